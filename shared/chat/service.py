"""Chat turns: starting one (everything that can refuse it, before any event), running it (the
lifecycle in :mod:`shared.chat.turn` around the agent mode's generation strategy), following
and cancelling it, and reaping the ones whose generator died.

The chat domain reaches the others only through their contracts: the conversation's turns
(``shared.conversations.contract``), the agent a chat runs (``shared.agents.contract``) and
retrieval (``shared.knowledge.contract``); models through the gateway and resolver.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.agents.contract import ChatAgent, agent_ref, render_system_prompt, resolve_user_variables
from shared.auth.principal import Principal
from shared.cache.ports import EventStream, KeyValueStore, StreamEvent
from shared.chat import prompt as prompts
from shared.chat.api import CancelOut, ChatBody, ToolOutputsBody
from shared.chat.events import cancel_key, stream_key, valid_event_id
from shared.chat.generation import GenerationStrategy, ResumeState, default_strategies
from shared.chat.turn import Emit, TurnLifecycle
from shared.conversations.contract import (
    TOOL_OUTPUTS_EXPIRED,
    TOOL_OUTPUTS_EXPIRED_MESSAGE,
    MessageOut,
    TurnStore,
    chat_agent_for,
    check_agent_allowed,
    end_user_of,
)
from shared.conversations.errors import (
    AgentModeUnavailable,
    ChatEventsExpired,
    ChatNotAwaitingToolOutputs,
    ChatToolOutputsExpired,
    ConversationAgentMismatch,
)
from shared.errors import Conflict, StratusError, ValidationFailed
from shared.models.context_windows import ContextWindows
from shared.models.spec import Capability
from shared.observability import tracer

if TYPE_CHECKING:
    from shared.agents.contract import AgentResolver, AgentVariableStore
    from shared.files.contract import FileReferences
    from shared.knowledge.contract import Retriever
    from shared.models.gateway import ModelGateway
    from shared.models.resolver import ModelResolver

logger = logging.getLogger(__name__)

CANCEL_TTL_S = 3600
# A chatflow turn's answer may hold several models' answers: its event stream keeps this many.
CHATFLOW_STREAM_EVENTS = 50_000
TIMED_OUT = "chat_turn_timed_out"


@dataclass(frozen=True)
class ChatSettings:
    checkpoint_s: float = 2.0
    events_ttl_s: int = 86_400
    stuck_after_s: int = 300
    tool_outputs_ttl_s: int = 600


@dataclass
class ChatDeps:
    conversations: Callable[[], TurnStore]
    agents: Callable[[], AgentResolver]
    resolver: Callable[[], ModelResolver]
    gateway: Callable[[], ModelGateway]
    retrieval: Callable[[], Retriever]
    kv: Callable[[], KeyValueStore]
    events: Callable[[], EventStream]
    count_tokens: Callable[[str], int]
    settings: ChatSettings
    # The agent variables' values kept per end user; None: every variable reads its default.
    variables: Callable[[], AgentVariableStore] | None = None
    # Uploaded files a turn names (a chatflow's sys.files); None: files are refused.
    files: Callable[[], FileReferences] | None = None
    clock: Callable[[], float] = time.perf_counter
    # The generation of each agent mode (a mode missing here cannot chat).
    strategies: Mapping[str, GenerationStrategy] = field(default_factory=default_strategies)


@dataclass
class Turn:
    """A started turn: what ``run`` needs, all read before the answer streams."""

    principal: Principal
    tenant_id: uuid.UUID
    conversation_id: uuid.UUID
    question_id: uuid.UUID
    answer_id: uuid.UUID
    # The answer's place in the conversation: its history is what came before.
    answer_position: int
    chat_agent: ChatAgent
    system_prompt: str
    question: str
    context_tokens: int
    output_tokens: int
    created_conversation: bool
    started: float
    # The conversation's end user (sys.user_id of a chatflow's run).
    end_user: str = ""
    # The turns the model remembers when the client sent them itself (a stateless API such as
    # OpenAI's chat completions), instead of the conversation's stored ones; oldest first.
    history: list[tuple[str, str]] | None = None
    # The agent variables' values for this turn (a chatflow's sys.user_variables).
    user_variables: dict[str, str] = field(default_factory=dict)
    # The file references of the files the turn names (a chatflow's sys.files).
    files: list[dict[str, Any]] = field(default_factory=list)
    # The caller can run the agent's client tools (a call pauses the turn); other APIs never
    # offer them.
    client_tools: bool = False
    # A paused answer being continued, and the text it held.
    resume: ResumeState | None = None
    content: str = ""


class TurnFailed(StratusError):
    """A non-streaming turn that ended failed: the answer's own error, with its ids."""

    def __init__(self, error: StratusError, message: MessageOut) -> None:
        super().__init__(error.message, code=error.code,
                         details={**error.details, "message_id": str(message.id),
                                  "conversation_id": str(message.conversation_id)},
                         headers=error.headers)
        self.status = error.status


def model_limits(deps: ChatDeps, tenant_id: uuid.UUID, chat_agent: ChatAgent) -> tuple[int, int]:
    """The context window and output tokens an agent's answer is sized for: its model's (and its
    fallback's, the smaller of the two)."""
    resolver = deps.resolver()
    config = chat_agent.config
    name = config.model.name or resolver.default_name(tenant_id, Capability.CHAT)
    if not name:
        from shared.models.errors import ModelNotConfigured

        raise ModelNotConfigured("No chat model is configured: set the agent's model or a tenant default "
                                 "(PUT /api/v1/models/defaults)", details={"capability": "chat"})
    models = [resolver.get(tenant_id, name, Capability.CHAT)]
    fallback = config.fallback_model or resolver.fallback_name(tenant_id)
    if fallback and fallback.lower() != name.lower():
        try:
            models.append(resolver.get(tenant_id, fallback, Capability.CHAT))
        except StratusError:
            # A fallback that cannot be resolved is the gateway's to report if it is needed.
            logger.warning("the fallback chat model cannot be resolved", extra={"model": fallback})
    # The prompt must fit whichever model answers: size it for the smaller of the two, and
    # for the window a provider reported when it is smaller than the declared one.
    windows = ContextWindows(deps.kv())
    context = min(windows.effective(model) for model in models)
    output = min(model.spec.max_output_tokens for model in models)
    if config.model.max_tokens:
        output = min(output, config.model.max_tokens)
    # A model declaring an output limit near its context would leave no room for the prompt.
    return context, min(output, context // 2)


def _tool_outputs(body: ToolOutputsBody, pending: list[str]) -> dict[str, str]:
    """The outputs by call id: each pending call answered exactly once (else a 422 naming the
    calls missing, unknown or repeated)."""
    given: dict[str, str] = {}
    problems = []
    for index, item in enumerate(body.tool_outputs):
        field = f"tool_outputs[{index}].tool_call_id"
        if item.tool_call_id not in pending:
            problems.append({"field": field, "type": "unknown_tool_call",
                             "message": f"{item.tool_call_id!r} is not a pending call of this answer"})
        elif item.tool_call_id in given:
            problems.append({"field": field, "type": "duplicate",
                             "message": f"{item.tool_call_id!r} is answered twice"})
        given.setdefault(item.tool_call_id, item.output)
    missing = [call_id for call_id in pending if call_id not in given]
    if missing:
        problems.append({"field": "tool_outputs", "type": "missing",
                         "message": "no output for the pending calls " + ", ".join(map(repr, missing))})
    if problems:
        raise ValidationFailed("Every pending tool call takes one output: " + problems[0]["message"],
                               code="chat_tool_outputs_invalid",
                               details={"fields": problems, "pending": pending, "missing": missing})
    return given


class ChatService:
    def __init__(self, deps: ChatDeps) -> None:
        self._d = deps

    # Starting a turn ---------------------------------------------------------------------------
    @tracer.capture_method(capture_response=False)
    def start(self, principal: Principal, body: ChatBody, *, history: Sequence[tuple[str, str]] | None = None,
              instructions: str = "", client_tools: bool = False, kept_out_of: uuid.UUID | None = None) -> Turn:
        """Everything that can refuse the turn with an HTTP error happens here, before any
        event: the conversation, the agent, the inputs, the model, the question's size.

        ``history``: the (question, answer) turns before this one as the client holds them (a
        stateless API): the model remembers them, within the agent's memory limits, instead of
        the conversation's. ``instructions``: the client's own system text, after the agent's.
        ``client_tools``: the caller can answer the agent's client tools (a call pauses the turn).
        ``kept_out_of``: the new conversation stands in for that one (a chat kept out of it)."""
        started = self._d.clock()
        tenant_id = principal.tenant
        store = self._d.conversations()
        ref = agent_ref(body.agent_id)
        if isinstance(ref, uuid.UUID):
            # Before the conversation is read: nothing about another agent is revealed.
            check_agent_allowed(principal, ref)
        conversation = None
        if body.conversation_id is not None:
            conversation = store.find_conversation(principal, body.conversation_id, body.user)
        draft = conversation.draft if conversation is not None else body.draft
        chat_agent = chat_agent_for(principal, self._d.agents(), body.agent_id, draft)
        agent = chat_agent.agent
        if conversation is not None and conversation.agent_id != agent.id:
            raise ConversationAgentMismatch(details={"conversation_id": str(conversation.id),
                                                     "agent_id": str(conversation.agent_id)})
        if chat_agent.config.mode not in self._d.strategies:
            raise AgentModeUnavailable(details={"mode": chat_agent.config.mode})
        inputs = {**(conversation.inputs if conversation is not None else {}), **body.inputs}
        end_user = end_user_of(principal, body.user)
        stored = None
        if chat_agent.config.user_variables and self._d.variables is not None:
            stored = self._d.variables().stored_values(tenant_id, agent.id, end_user)
        system_prompt = render_system_prompt(chat_agent.config, inputs, stored)
        files = self._files(tenant_id, chat_agent, body.files)
        if instructions:
            system_prompt = f"{system_prompt}\n\n{instructions}" if system_prompt else instructions
        if chat_agent.config.mode == "chatflow":
            # The chatflow's nodes call their own models, each sized by the engine.
            context_tokens, output_tokens, ok, needed, available = 0, CHATFLOW_STREAM_EVENTS, True, 0, 0
        else:
            context_tokens, output_tokens = model_limits(self._d, tenant_id, chat_agent)
            ok, needed, available = prompts.fits(system_prompt=system_prompt, question=body.message,
                                                 context_tokens=context_tokens, output_tokens=output_tokens,
                                                 count=self._d.count_tokens)
        if not ok:
            raise ValidationFailed("The message and the system prompt do not fit the model's context window",
                                   code="chat_message_too_long",
                                   details={"fields": [{"field": "message", "type": "too_long",
                                                        "message": f"needs about {needed} tokens; "
                                                                   f"the model takes {available}"}]})
        opened = store.open_turn(principal, conversation_id=conversation.id if conversation is not None else None,
                                 user=body.user, agent_id=agent.id, draft=body.draft, inputs=body.inputs,
                                 question=body.message, agent_version=chat_agent.version,
                                 kept_out_of=kept_out_of if conversation is None else None)
        return Turn(principal=principal, tenant_id=tenant_id, conversation_id=opened.conversation_id,
                    question_id=opened.question_id, answer_id=opened.answer_id,
                    answer_position=opened.answer_position, chat_agent=chat_agent, system_prompt=system_prompt,
                    question=body.message, context_tokens=context_tokens, output_tokens=output_tokens,
                    created_conversation=opened.created_conversation, started=started,
                    end_user=end_user, history=None if history is None else list(history),
                    user_variables=resolve_user_variables(chat_agent.config, inputs, stored), files=files,
                    client_tools=client_tools)

    @tracer.capture_method(capture_response=False)
    def resume(self, principal: Principal, message_id: uuid.UUID, body: ToolOutputsBody) -> Turn:
        """Continue an answer paused on client tools with their outputs (ADR 0051). Everything
        that can refuse it happens first, changing nothing: another's answer is 404; one not
        waiting 409; an output missing, unknown or given twice 422. An offer that expired fails
        the answer (409 ``chat_tool_outputs_expired``). Then a claim takes the answer back to
        running, so of two submits one continues and the other gets 409."""
        started = self._d.clock()
        tenant_id = principal.tenant
        store = self._d.conversations()
        answer = store.visible_answer(principal, message_id, body.user)
        pending = answer.required_action.tool_calls if answer.required_action is not None else []
        if answer.status != "requires_action" or not pending:
            raise ChatNotAwaitingToolOutputs(details={"message_id": str(message_id), "status": answer.status})
        outputs = _tool_outputs(body, [call.id for call in pending])
        assert answer.required_action is not None
        if answer.required_action.expires_at <= datetime.now(UTC):
            store.fail_paused(tenant_id, message_id, TOOL_OUTPUTS_EXPIRED, TOOL_OUTPUTS_EXPIRED_MESSAGE)
            raise ChatToolOutputsExpired(details={"message_id": str(message_id),
                                                  "expired_at": answer.required_action.expires_at.isoformat()})
        conversation = store.find_conversation(principal, answer.conversation_id, body.user)
        chat_agent = chat_agent_for(principal, self._d.agents(), str(answer.agent_id), conversation.draft)
        if chat_agent.config.mode not in self._d.strategies:
            raise AgentModeUnavailable(details={"mode": chat_agent.config.mode})
        end_user = end_user_of(principal, body.user)
        stored = None
        if chat_agent.config.user_variables and self._d.variables is not None:
            stored = self._d.variables().stored_values(tenant_id, chat_agent.agent.id, end_user)
        system_prompt = render_system_prompt(chat_agent.config, conversation.inputs, stored)
        context_tokens, output_tokens = model_limits(self._d, tenant_id, chat_agent)
        question = store.question_of(tenant_id, message_id)
        # Fenced on the pause the outputs were checked against: a repeat of an earlier submit
        # must not take a later pause (its calls have other ids).
        if not store.claim_paused(tenant_id, message_id, answer.required_action.expires_at):
            raise ChatNotAwaitingToolOutputs(details={"message_id": str(message_id)})
        return Turn(principal=principal, tenant_id=tenant_id, conversation_id=answer.conversation_id,
                    question_id=answer.reply_to or answer.id, answer_id=answer.id,
                    answer_position=answer.position, chat_agent=chat_agent, system_prompt=system_prompt,
                    question=question, context_tokens=context_tokens, output_tokens=output_tokens,
                    created_conversation=False, started=started, end_user=end_user,
                    user_variables=resolve_user_variables(chat_agent.config, conversation.inputs, stored),
                    client_tools=True, content=answer.content, history=answer.required_action.history,
                    resume=ResumeState(steps=[step.model_dump(mode="json") for step in answer.steps],
                                       outputs=outputs))

    def _files(self, tenant_id: uuid.UUID, chat_agent: ChatAgent,
               file_ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
        """The file references of the files a turn names: a chatflow's only (other agents have no
        way to read them yet); an id the tenant has no file of is a 422 naming it."""
        from shared.errors import NotFound

        if not file_ids:
            return []
        if chat_agent.config.mode != "chatflow" or self._d.files is None:
            raise ValidationFailed("Only a chatflow agent reads files (as sys.files); send the text instead",
                                   code="chat_files_unsupported", details={"fields": [{
                                       "field": "files", "type": "unsupported",
                                       "message": f"a {chat_agent.config.mode} agent takes no files"}]})
        references, problems = [], []
        for index, file_id in enumerate(file_ids):
            try:
                references.append(self._d.files().reference(tenant_id, file_id))
            except NotFound:
                problems.append({"field": f"files[{index}]", "type": "file_not_found",
                                 "message": f"there is no uploaded file {file_id}"})
        if problems:
            raise ValidationFailed(problems[0]["message"], code="chat_file_not_found", details={"fields": problems})
        return references

    # Running a turn ----------------------------------------------------------------------------
    @tracer.capture_method(capture_response=False)
    def run(self, turn: Turn, emit: Emit | None = None) -> tuple[MessageOut, StratusError | None]:
        """Generate the answer. Never raises for a failure of the turn itself: that is stored
        on the answer and sent as an ``error`` event. Returns the final answer and its error."""
        strategy = self._d.strategies[turn.chat_agent.config.mode]
        return TurnLifecycle(self._d, turn, emit, strategy).run()

    # Cancel, replay, reaper ----------------------------------------------------------------------
    @tracer.capture_method(capture_response=False)
    def cancel(self, principal: Principal, message_id: uuid.UUID, user: str | None) -> CancelOut:
        store = self._d.conversations()
        answer = store.visible_answer(principal, message_id, user)
        status: str = answer.status
        if status == "requires_action":
            if store.cancel_paused(principal.tenant, message_id):
                # Nothing runs it: cancelled at once, keeping its steps (no output will be taken).
                return CancelOut(message_id=message_id, status="cancelled", cancel_requested=True)
            # A submit continued it meanwhile (or it ended): cancel it as it is now.
            status = store.answer_status(principal.tenant, message_id) or "failed"
        if status != "running":
            raise Conflict("The answer has already ended", code="chat_turn_finished",
                           details={"message_id": str(message_id), "status": status})
        self._d.kv().set(cancel_key(message_id), "1", ttl_s=CANCEL_TTL_S)
        # The turn may have paused since it was read (then nothing would read the flag); the turn
        # checks the flag after its pause too, so one of the two sees the other.
        if store.answer_status(principal.tenant, message_id) == "requires_action" \
                and store.cancel_paused(principal.tenant, message_id):
            return CancelOut(message_id=message_id, status="cancelled", cancel_requested=True)
        return CancelOut(message_id=message_id, status="running", cancel_requested=True)

    @tracer.capture_method(capture_response=False)
    def replay(self, principal: Principal, message_id: uuid.UUID, user: str | None,
               after_id: str | None, block_ms: int) -> Iterator[list[StreamEvent]]:
        """Batches of the answer's events after ``after_id``, waiting up to ``block_ms`` for
        each (an empty batch: time for a heartbeat), until ``done``."""
        if after_id is not None and not valid_event_id(after_id):
            raise ValidationFailed("Last-Event-ID is not an event id of this stream", code="chat_event_id_invalid",
                                   details={"fields": [{"field": "headers.last-event-id", "type": "value_error",
                                                        "message": "expected <milliseconds>-<sequence>"}]})
        answer = self._d.conversations().visible_answer(principal, message_id, user)
        events = self._d.events()
        key = stream_key(message_id)
        first = events.read(key, after_id, count=100, block_ms=0)
        if not first and answer.status != "running":
            if after_id is None:
                raise ChatEventsExpired(details={"message_id": str(message_id), "status": answer.status})
            # Ended, and nothing after the client's position: close it for good (an SSE client
            # would otherwise reconnect with the same id for ever).
            first = [self._close(key, answer.status)]
        return self._follow(principal.tenant, message_id, key, after_id, first, block_ms)

    def _close(self, key: str, status: str) -> StreamEvent:
        data = {"status": status}
        return StreamEvent(self._d.events().append(key, "done", data, ttl_s=self._d.settings.events_ttl_s),
                           "done", data)

    def _follow(self, tenant_id: uuid.UUID, message_id: uuid.UUID, key: str, after_id: str | None,
                first: list[StreamEvent], block_ms: int) -> Iterator[list[StreamEvent]]:
        events = self._d.events()
        batch = first
        last = after_id
        idle_checks = 0
        while True:
            if batch:
                yield batch
                last = batch[-1].id
                if any(e.type == "done" for e in batch):
                    return
                idle_checks = 0
            else:
                yield []
                idle_checks += 1
                # A stream that stays silent while its answer has ended: the writer died before
                # its last event and nobody closed it (or its events expired).
                if idle_checks % 3 == 0:
                    status = self._status(tenant_id, message_id)
                    if status != "running":
                        tail = events.read(key, last, count=100, block_ms=0)
                        yield tail if any(e.type == "done" for e in tail) else [*tail, self._close(key, status)]
                        return
            batch = events.read(key, last, count=100, block_ms=block_ms)

    def _status(self, tenant_id: uuid.UUID, message_id: uuid.UUID) -> str:
        return self._d.conversations().answer_status(tenant_id, message_id) or "failed"

    @tracer.capture_method(capture_response=False)
    def reap(self, limit: int = 100) -> int:
        """Fail answers stuck in ``running`` (their generator died: a crash, a timeout) and close
        their event streams so followers stop waiting."""
        store = self._d.conversations()
        stuck = store.stuck_answers(self._d.settings.stuck_after_s, limit)
        reaped = 0
        for item in stuck:
            code, message = TIMED_OUT, (f"The answer stopped without finishing (no progress for "
                                        f"{self._d.settings.stuck_after_s} s)")
            if item.paused:
                code, message = TOOL_OUTPUTS_EXPIRED, TOOL_OUTPUTS_EXPIRED_MESSAGE
            if not store.fail_stuck(item, code, message):  # it finished (or was resumed) meanwhile
                continue
            reaped += 1
            events = self._d.events()
            key = stream_key(item.message_id)
            ttl = self._d.settings.events_ttl_s
            events.append(key, "error", {"code": code, "message": message}, ttl_s=ttl)
            events.append(key, "done", {"status": "failed"}, ttl_s=ttl)
            logger.warning("reaped a stuck chat turn", extra={"message_id": str(item.message_id),
                                                                "tenant_id": str(item.tenant_id)})
        return reaped
