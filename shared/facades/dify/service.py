"""Dify's service API as calls of Stratus's services (docs/dify-api.md,
docs/adr/0046-dify-service-api.md). A Dify app key is a Stratus key bound to one agent or one
workflow: the chat, completion, message and conversation routes act for its agent — turns of
the chat service, the conversation service's lists, renames, deletions and feedback —, the
workflow routes for its workflow — runs of the run service. Nothing here chats, runs or
retrieves: it picks the app, translates the request and shapes the answer."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from shared.errors import Conflict, StratusError, ValidationFailed
from shared.facades.dify.api import (
    DifyChatMessageOut,
    DifyChatMessageRequest,
    DifyCompletionMessageRequest,
    DifyConversationList,
    DifyConversationOut,
    DifyConversationsQuery,
    DifyFeedbackRequest,
    DifyInfo,
    DifyMessageList,
    DifyMessageOut,
    DifyMessagesQuery,
    DifyParameters,
    DifyRenameRequest,
    DifyResultOut,
    DifyUploadedFile,
    DifyWorkflowRunDetail,
    DifyWorkflowRunOut,
    DifyWorkflowRunRequest,
)
from shared.facades.dify.dialect import ChatMessageStream, WorkflowRunStream, metadata, now, run_status

if TYPE_CHECKING:
    from shared.agents.service import AgentService
    from shared.auth.principal import Principal
    from shared.cache.ports import StreamEvent
    from shared.chat.service import ChatService, Turn
    from shared.conversations.contract import MessageOut as StratusMessage
    from shared.conversations.service import ConversationService
    from shared.conversations.turns import ConversationTurns
    from shared.workflows.runs_api import WorkflowRunOut as StratusRun
    from shared.workflows.runs_service import WorkflowRunService
    from shared.workflows.service import WorkflowService

AppKind = Literal["agent", "workflow"]
# Dify's cursors (first_id, last_id) over Stratus's numbered pages: at most this many items are
# read to find one; past it the cursor is refused, naming it.
_CURSOR_SCAN = 2000
_SCAN_PAGE = 100
# Dify's app modes by agent mode.
_MODES = {"quick-answer": "chat", "smart-reasoning": "agent-chat", "chatflow": "advanced-chat"}
_KEY_HINT = ("Create one with POST /api/v1/api-keys and {\"resource_type\": \"agent\" or \"workflow\", "
             "\"resource_id\": \"<its id>\"}: that key is the Dify app key")


class DifyError(StratusError):
    """An error Dify itself answers (its own code and status)."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message, code=code, details=details)
        self.status = status


def app_key_required(route: str) -> DifyError:
    return DifyError(400, "app_unavailable", f"{route} acts for the agent or workflow its key is bound to, and this "
                                             f"key is bound to none. {_KEY_HINT}.", route=route)


def wrong_app(route: str, kind: AppKind) -> DifyError:
    if kind == "workflow":
        return DifyError(400, "not_chat_app", f"This key is bound to a workflow; {route} chats with an agent. Run the "
                                              "workflow with POST /dify/v1/workflows/run, or use a key bound to an "
                                              "agent (resource_type agent).", route=route)
    return DifyError(400, "not_workflow_app", f"This key is bound to an agent; {route} runs a workflow. Chat with "
                                              "POST /dify/v1/chat-messages, or use a key bound to a workflow "
                                              "(resource_type workflow).", route=route)


def blocking_timeout(run_id: uuid.UUID, wait_s: float) -> DifyError:
    return DifyError(504, "workflow_blocking_timeout",
                     f"The run did not finish within {wait_s:g} s, the bound of response_mode blocking; it goes on "
                     f"(GET /dify/v1/workflows/run/{run_id}). Use response_mode \"streaming\" for runs this long.",
                     workflow_run_id=str(run_id))


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}",
                            details={"fields": [{"field": field, "message": message, "type": "value_error"}]})


def _id(value: str, missing: Callable[[], StratusError]) -> uuid.UUID:
    """A path or body id: one that is no UUID names nothing, like an unknown one (Dify's 404)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise missing() from None


def _seconds(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _conversation_missing(conversation_id: str) -> StratusError:
    from shared.conversations.errors import ConversationNotFound

    return ConversationNotFound(details={"conversation_id": conversation_id})


def _message_missing(message_id: str) -> StratusError:
    from shared.conversations.errors import MessageNotFound

    return MessageNotFound(details={"message_id": message_id})


def _run_missing(run_id: str) -> StratusError:
    from shared.workflows.errors import WorkflowRunNotFound

    return WorkflowRunNotFound(details={"run_id": run_id})


def app_of(principal: Principal, route: str) -> tuple[AppKind, uuid.UUID]:
    """The app a key acts for: the agent or workflow it is bound to."""
    if principal.resource_type not in ("agent", "workflow") or principal.resource_id is None:
        raise app_key_required(route)
    kind: AppKind = "agent" if principal.resource_type == "agent" else "workflow"
    return kind, principal.resource_id


def agent_of(principal: Principal, route: str) -> uuid.UUID:
    kind, app_id = app_of(principal, route)
    if kind != "agent":
        raise wrong_app(route, kind)
    return app_id


def workflow_of(principal: Principal, route: str) -> uuid.UUID:
    kind, app_id = app_of(principal, route)
    if kind != "workflow":
        raise wrong_app(route, kind)
    return app_id


@dataclass(frozen=True)
class DifyTurn:
    """A started chat or completion message: the turn and what its answer repeats."""

    turn: Turn
    mode: str
    created_at: int
    # A completion message keeps no conversation on the wire.
    conversation: bool

    @property
    def task_id(self) -> str:
        return str(self.turn.answer_id)

    def stream(self) -> ChatMessageStream:
        return ChatMessageStream(task_id=self.task_id, message_id=self.task_id,
                                 conversation_id=str(self.turn.conversation_id) if self.conversation else None,
                                 agent=self.mode == "agent-chat", created_at=self.created_at)

    def answer(self, final: StratusMessage) -> DifyChatMessageOut:
        return DifyChatMessageOut.model_validate({
            "task_id": self.task_id, "id": self.task_id, "message_id": self.task_id,
            "conversation_id": str(self.turn.conversation_id) if self.conversation else None,
            "mode": self.mode if self.conversation else "completion", "answer": final.content,
            "metadata": metadata(final.model_dump(mode="json")), "created_at": self.created_at})


@dataclass(frozen=True)
class DifyRun:
    """A started workflow run."""

    run: StratusRun

    def stream(self) -> WorkflowRunStream:
        return WorkflowRunStream(run_id=str(self.run.id), workflow_id=str(self.run.workflow_id),
                                 inputs=self.run.inputs, created_at=int(self.run.created_at.timestamp()))


def run_data(run: StratusRun) -> dict[str, Any]:
    return {"id": str(run.id), "workflow_id": str(run.workflow_id), "status": run_status(run.status),
            "outputs": run.outputs, "error": run.error.message if run.error else None,
            "elapsed_time": round((run.elapsed_ms or 0) / 1000, 3), "total_tokens": run.tokens,
            "total_steps": len(run.nodes), "created_at": int(run.created_at.timestamp()),
            "finished_at": _seconds(run.finished_at)}


def _input_form(kind: str, name: str, label: str, required: bool, default: Any, **extra: Any) -> dict[str, Any]:
    return {kind: {"label": label or name, "variable": name, "required": required,
                   "default": "" if default is None else default, **extra}}


_DISABLED = {"enabled": False}


class DifyService:
    def __init__(self, *, chat: Callable[[], ChatService], conversations: Callable[[], ConversationService],
                 turns: Callable[[], ConversationTurns], agents: Callable[[], AgentService],
                 workflows: Callable[[], WorkflowService], runs: Callable[[], WorkflowRunService]) -> None:
        self._chat = chat
        self._conversations = conversations
        self._turns = turns
        self._agents = agents
        self._workflows = workflows
        self._runs = runs

    # Chat and completion messages -------------------------------------------------------------
    def start_chat(self, principal: Principal, body: DifyChatMessageRequest) -> DifyTurn:
        """Admit the turn (every refusal is an error before any byte of the answer)."""
        from shared.chat.api import ChatBody

        agent_id = agent_of(principal, "POST /dify/v1/chat-messages")
        conversation_id = None
        if body.conversation_id is not None:
            conversation_id = _id(body.conversation_id, lambda: _conversation_missing(str(body.conversation_id)))
        request = ChatBody.model_construct(agent_id=str(agent_id), conversation_id=conversation_id,
                                           message=body.query, user=body.user, inputs=body.inputs,
                                           stream=body.response_mode == "streaming", draft=False,
                                           files=_file_ids(body.files))
        turn = self._chat().start(principal, request)
        return DifyTurn(turn, _MODES.get(turn.chat_agent.config.mode, "chat"), now(), conversation=True)

    def start_completion(self, principal: Principal, body: DifyCompletionMessageRequest) -> DifyTurn:
        """One answer without a conversation to continue: a conversation of one turn (stored, so
        an answer whose client left is still written whole), the question ``query`` or
        ``inputs.query``."""
        from shared.chat.api import ChatBody

        agent_id = agent_of(principal, "POST /dify/v1/completion-messages")
        question = body.query if body.query is not None else body.inputs.get("query")
        if not isinstance(question, str) or not question.strip():
            raise _invalid("query", "the question is missing: send query, or inputs.query")
        inputs = {name: value for name, value in body.inputs.items() if name != "query"}
        request = ChatBody.model_construct(agent_id=str(agent_id), conversation_id=None, message=question,
                                           user=body.user, inputs=inputs, stream=body.response_mode == "streaming",
                                           draft=False, files=_file_ids(body.files))
        turn = self._chat().start(principal, request, history=[])
        return DifyTurn(turn, "completion", now(), conversation=False)

    def complete(self, started: DifyTurn) -> DifyChatMessageOut:
        """Run the turn to its end (blocking): the answer, or the turn's error."""
        from shared.chat.service import TurnFailed

        final, error = self._chat().run(started.turn)
        if error is not None:
            raise TurnFailed(error, final)
        return started.answer(final)

    def run(self, started: DifyTurn, emit: Callable[[StreamEvent], None]) -> Any:
        return self._chat().run(started.turn, emit)

    def stop_message(self, principal: Principal, route: str, task_id: str, user: str | None) -> DifyResultOut:
        """Stop a running answer (Dify's stop: an answer already over is success too)."""
        agent_of(principal, route)
        message_id = _id(task_id, lambda: _message_missing(task_id))
        try:
            self._chat().cancel(principal, message_id, user)
        except Conflict as exc:
            if exc.code != "chat_turn_finished":
                raise
        return DifyResultOut()

    # Messages and conversations -----------------------------------------------------------------
    def _turns_of(self, principal: Principal, conversation_id: uuid.UUID,
                  user: str | None) -> Iterator[tuple[StratusMessage, StratusMessage]]:
        """The conversation's (question, answer) pairs, newest first."""
        from shared.conversations.repository import MESSAGE_SORTS
        from shared.db.paging import page_request

        answers: dict[uuid.UUID, StratusMessage] = {}
        page = 1
        while True:
            listed = self._conversations().list_messages(principal, conversation_id, user,
                                                         page_request(page, _SCAN_PAGE, "-position", MESSAGE_SORTS))
            for message in listed.items:
                if message.role == "assistant" and message.reply_to is not None:
                    answers[message.reply_to] = message
                elif message.id in answers:
                    yield message, answers.pop(message.id)
            if page * _SCAN_PAGE >= listed.total or page * _SCAN_PAGE >= _CURSOR_SCAN:
                return
            page += 1

    def messages(self, principal: Principal, query: DifyMessagesQuery) -> DifyMessageList:
        """A page of the conversation's turns before ``first_id`` (newest first, then handed
        oldest first, as Dify's clients show them)."""
        agent_of(principal, "GET /dify/v1/messages")
        conversation_id = _id(query.conversation_id, lambda: _conversation_missing(query.conversation_id))
        conversation = self._conversations().get_conversation(principal, conversation_id, query.user)
        found = query.first_id is None
        picked: list[tuple[StratusMessage, StratusMessage]] = []
        has_more = False
        for question, answer in self._turns_of(principal, conversation_id, query.user):
            if not found:
                found = str(answer.id) == query.first_id
                continue
            if len(picked) == query.limit:
                has_more = True
                break
            picked.append((question, answer))
        if not found:
            # Dify's own words for a cursor that names nothing.
            raise DifyError(404, "not_found", "First Message Not Exists.", first_id=query.first_id)
        data = [DifyMessageOut.model_validate({
            "id": str(answer.id), "conversation_id": str(conversation_id), "inputs": conversation.inputs,
            "query": question.content, "answer": answer.content, "status": answer.status,
            "error": answer.error.message if answer.error else None, "message_files": [],
            "feedback": {"rating": answer.feedback.rating} if answer.feedback and answer.feedback.rating else None,
            "retriever_resources": metadata(answer.model_dump(mode="json"))["retriever_resources"],
            "agent_thoughts": [], "created_at": int(answer.created_at.timestamp())})
            for question, answer in reversed(picked)]
        return DifyMessageList(limit=query.limit, has_more=has_more, data=data)

    def feedback(self, principal: Principal, message_id: str, body: DifyFeedbackRequest) -> DifyResultOut:
        from shared.conversations.api import MessageFeedback

        agent_of(principal, "POST /dify/v1/messages/{message_id}/feedbacks")
        answer = self._turns().visible_answer(principal, _id(message_id, lambda: _message_missing(message_id)),
                                              body.user)
        self._conversations().message_feedback(
            principal, answer.conversation_id, answer.id,
            MessageFeedback.model_construct(rating=body.rating, content=body.content or "", user=body.user))
        return DifyResultOut()

    def conversations(self, principal: Principal, query: DifyConversationsQuery) -> DifyConversationList:
        """The end user's conversations with the key's agent after ``last_id``."""
        from shared.conversations.repository import CONVERSATION_SORTS
        from shared.db.paging import page_request

        agent_of(principal, "GET /dify/v1/conversations")
        found = query.last_id is None
        picked: list[DifyConversationOut] = []
        has_more = False
        page = 1
        while len(picked) <= query.limit:
            listed = self._conversations().list_conversations(
                principal, query.user, None, page_request(page, _SCAN_PAGE, query.sort_by, CONVERSATION_SORTS))
            for conversation in listed.items:
                if not found:
                    found = str(conversation.id) == query.last_id
                    continue
                if len(picked) == query.limit:
                    has_more = True
                    break
                picked.append(_conversation_out(conversation))
            if has_more or page * _SCAN_PAGE >= min(listed.total, _CURSOR_SCAN):
                break
            page += 1
        if not found:
            raise DifyError(404, "not_found", "Last Conversation Not Exists.", last_id=query.last_id)
        return DifyConversationList(limit=query.limit, has_more=has_more, data=picked)

    def delete_conversation(self, principal: Principal, conversation_id: str, user: str | None) -> DifyResultOut:
        agent_of(principal, "DELETE /dify/v1/conversations/{conversation_id}")
        found = _id(conversation_id, lambda: _conversation_missing(conversation_id))
        self._conversations().delete_conversation(principal, found, user)
        return DifyResultOut()

    def rename_conversation(self, principal: Principal, conversation_id: str,
                            body: DifyRenameRequest) -> DifyConversationOut:
        from shared.conversations.api import UpdateConversation

        agent_of(principal, "POST /dify/v1/conversations/{conversation_id}/name")
        if body.name is None:
            raise _invalid("name", "send the new name (auto_generate is not served)")
        found = _id(conversation_id, lambda: _conversation_missing(conversation_id))
        renamed = self._conversations().update_conversation(
            principal, found, UpdateConversation.model_construct(name=body.name, user=body.user, version=None))
        return _conversation_out(renamed)

    # Workflow runs ------------------------------------------------------------------------------
    def start_run(self, principal: Principal, body: DifyWorkflowRunRequest) -> DifyRun:
        from shared.workflows.runs_api import StartRun

        workflow_id = workflow_of(principal, "POST /dify/v1/workflows/run")
        mode = "stream" if body.response_mode == "streaming" else "sync"
        # File inputs in Dify's form (upload_file_id): the run service resolves them (shared/workflows/file_inputs).
        request = StartRun.model_construct(inputs=body.inputs, version=None, mode=mode, query=None)
        return DifyRun(self._runs().start_run(principal, workflow_id, request))

    def finished_run(self, started: DifyRun, wait_s: float) -> DifyWorkflowRunOut:
        """A blocking run's answer: the run when it finished within the wait, else Dify's
        error pointing to streaming (the run goes on)."""
        from shared.workflows.runs_service import is_final

        run = started.run
        if not is_final(run) or run.status == "paused":
            raise blocking_timeout(run.id, wait_s)
        return DifyWorkflowRunOut.model_validate({"workflow_run_id": str(run.id), "task_id": str(run.id),
                                              "data": run_data(run)})

    def follow(self, principal: Principal, started: DifyRun, block_ms: int, follow_s: float) -> Any:
        from shared.workflows.run_stream import Follow

        return self._runs().follow_run(principal, started.run.id, None, Follow(block_ms=block_ms, follow_s=follow_s))

    def get_run(self, principal: Principal, run_id: str) -> DifyWorkflowRunDetail:
        workflow_of(principal, "GET /dify/v1/workflows/run/{workflow_run_id}")
        run = self._runs().get_run(principal, _id(run_id, lambda: _run_missing(run_id)))
        data = run_data(run)
        return DifyWorkflowRunDetail.model_validate({**data, "inputs": run.inputs})

    def stop_run(self, principal: Principal, task_id: str) -> DifyResultOut:
        """Stop a run (Dify's stop: a run already over is success too)."""
        from shared.workflows.errors import WorkflowRunFinished

        workflow_of(principal, "POST /dify/v1/workflows/tasks/{task_id}/stop")
        with contextlib.suppress(WorkflowRunFinished):
            self._runs().cancel_run(principal, _id(task_id, lambda: _run_missing(task_id)))
        return DifyResultOut()

    # Files --------------------------------------------------------------------------------------
    def upload(self, principal: Principal, filename: str, content_type: str | None, data: bytes) -> DifyUploadedFile:
        """Store a file for the key's app, through the files domain (its checks: size, type)."""
        from shared.files.wiring import files_service

        app_of(principal, "POST /dify/v1/files/upload")
        stored = files_service().upload(principal, filename, content_type, data)
        extension = stored.name.rsplit(".", 1)[-1].lower() if "." in stored.name else ""
        return DifyUploadedFile(id=str(stored.id), name=stored.name, size=stored.size, extension=extension,
                                mime_type=stored.content_type,
                                created_by=str(principal.user_id) if principal.user_id else None,
                                created_at=int(stored.created_at.timestamp()))

    # The app ------------------------------------------------------------------------------------
    def parameters(self, principal: Principal) -> DifyParameters:
        """What the app takes: an agent's prompt variables, opening message and suggested
        questions (of its published version); a workflow's start-node inputs."""
        kind, app_id = app_of(principal, "GET /dify/v1/parameters")
        opening, questions, form = "", [], []
        if kind == "agent":
            config = self._agents().resolve_for_chat(principal.tenant, app_id).config
            opening, questions = config.opening_message, list(config.suggested_questions)
            form = [_input_form("text-input", v.name, v.label, v.required, v.default, max_length=0)
                    for v in config.variables]
        else:
            from shared.workflows.configs import StartConfig

            document = self._workflows().resolve_for_run(principal.tenant, app_id).document
            for node in document.nodes:
                if node.type != "start":
                    continue
                for v in StartConfig.model_validate(node.config).variables:
                    if v.options:
                        form.append(_input_form("select", v.variable, v.label, v.required, v.default,
                                                options=[str(o) for o in v.options]))
                    elif v.type == "number":
                        form.append(_input_form("number", v.variable, v.label, v.required, v.default))
                    elif v.type == "string":
                        form.append(_input_form("text-input", v.variable, v.label, v.required, v.default,
                                                max_length=v.max_length or 0))
                    else:
                        # Objects, lists and booleans: JSON values Dify's form has no widget for.
                        form.append(_input_form("json", v.variable, v.label, v.required, v.default, type=v.type))
        from shared.config import get_settings

        return DifyParameters(
            opening_statement=opening, suggested_questions=questions,
            suggested_questions_after_answer=_DISABLED, speech_to_text=_DISABLED, text_to_speech=_DISABLED,
            retriever_resource={"enabled": kind == "agent"}, annotation_reply=_DISABLED, more_like_this=_DISABLED,
            sensitive_word_avoidance=_DISABLED, user_input_form=form,
            file_upload={"image": {"enabled": False}, "enabled": False},
            system_parameters={"file_size_limit": get_settings().max_body_bytes // (1024 * 1024),
                               "image_file_size_limit": 0, "audio_file_size_limit": 0, "video_file_size_limit": 0,
                               "workflow_file_upload_limit": 0})

    def info(self, principal: Principal) -> DifyInfo:
        kind, app_id = app_of(principal, "GET /dify/v1/info")
        if kind == "agent":
            agent = self._agents().get_agent(principal, app_id)
            return DifyInfo(name=agent.name, description=agent.description, tags=[],
                        mode=_MODES.get(agent.config.mode, "chat"), author_name="")
        workflow = self._workflows().get_workflow(principal, app_id)
        return DifyInfo(name=workflow.name, description=workflow.description, tags=[],
                    mode="advanced-chat" if workflow.document.mode == "chatflow" else "workflow", author_name="")


def _file_ids(files: list[dict[str, Any]] | None) -> list[uuid.UUID]:
    """Dify's message files (``{"transfer_method": "local_file", "upload_file_id"}``, checked by
    the request model) as the turn's file ids: a chatflow agent's run reads them as sys.files."""
    return [uuid.UUID(str(item["upload_file_id"])) for item in files or []]


def _conversation_out(conversation: Any) -> DifyConversationOut:
    return DifyConversationOut(id=str(conversation.id), name=conversation.name, inputs=conversation.inputs,
                           introduction="", created_at=int(conversation.created_at.timestamp()),
                           updated_at=int(conversation.updated_at.timestamp()))


def _chat() -> ChatService:
    from shared.chat.wiring import chat_service

    return chat_service()


def _conversations() -> ConversationService:
    from shared.conversations.wiring import conversation_service

    return conversation_service()


def _turn_store() -> ConversationTurns:
    from shared.conversations.wiring import turn_store

    return turn_store()


def _agents() -> AgentService:
    from shared.agents.wiring import agent_service

    return agent_service()


def _workflows() -> WorkflowService:
    from shared.workflows.wiring_api import workflow_service

    return workflow_service()


def _runs() -> WorkflowRunService:
    from shared.workflows.wiring_api import workflow_run_service

    return workflow_run_service()


def dify_service() -> DifyService:
    # Each service is imported when a route first needs it: the workflow-stream function never
    # loads the chat's, nor the chat function the workflow runs'.
    return DifyService(chat=_chat, conversations=_conversations, turns=_turn_store, agents=_agents,
                       workflows=_workflows, runs=_runs)
