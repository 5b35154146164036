"""Coze's workflow API (``cozepy``'s ``workflows`` module) over Stratus's workflows and runs
(docs/coze-api.md "Workflows", docs/adr/0049-coze-workflows.md).

- ``/v1/workflow/run`` is a run of the run service: ``sync`` (waits the service's sync bound, under
  the 28 s HTTP limit; a run not done by then is Coze's 4000 naming ``is_async`` and
  ``stream_run``, the run goes on) or ``async`` (``is_async: true``: the ``execute_id`` at once).
- ``/v1/workflow/stream_run`` follows the run's events as Coze's (:class:`CozeRunStream`):
  ``Message`` for the end output, ``Error``, ``Interrupt`` for a human-input pause, ``Done``; each
  with the ``id:`` line ``cozepy`` parses as an int. The stream ends at an interrupt.
- ``/v1/workflow/stream_resume`` answers the pause the interrupt's ``event_id`` names
  (``<run id>/<paused event id>/<node id>``) with ``resume_data``, then follows the run from
  just after its pause.
- ``/v1/workflows/chat`` runs a chatflow with the last user message as its query and answers
  ``/v3/chat``'s events (:class:`CozeWorkflowChatStream`).
- Lists, info, versions and run histories read the workflow and run services.

A key bound to a workflow reaches that workflow only; another workflow, another tenant's, or an
id that is no UUID is Coze's not-found (4200). Nothing here runs or stores: it picks the
service call, translates the request and shapes the answer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from shared.cache.ports import StreamEvent
from shared.errors import StratusError, ValidationFailed
from shared.facades.coze import wire
from shared.facades.coze.chat import CozeChat, CozeChatError, CozeChatUsage, CozeEnterMessage, CozeMessage
from shared.facades.coze.dialect import HEARTBEAT, coze_status, sse
from shared.validation import RequestModel

if TYPE_CHECKING:
    from shared.auth.principal import Principal
    from shared.workflows.api import WorkflowSummary
    from shared.workflows.runs_api import WorkflowRunOut
    from shared.workflows.runs_service import WorkflowRunService
    from shared.workflows.service import WorkflowService

# Coze's interrupt type of an input node (Coze Studio's EventType InputNode): a form answered
# with a JSON object of its fields, as Stratus's human-input node is.
INTERRUPT_INPUT = 5
_MAX_ID = 100
# Coze's version list: at most 30 per page.
MAX_VERSION_PAGE = 30
_DONE_DATA = {"debug_url": ""}


class _Request(RequestModel):
    # Values are the client's, kept as sent.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, strict=True, allow_inf_nan=False)


class _Query(RequestModel):
    # Query strings arrive as text: not strict.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=False)


class CozeWorkflowStreamRequest(_Request):
    """``POST /coze/v1/workflow/stream_run``: the workflow's latest published version runs."""

    workflow_id: str = Field(min_length=1, max_length=_MAX_ID, description="The workflow's id")
    parameters: dict[str, Any] | None = Field(default=None, description="The start node's inputs by name")
    bot_id: str | None = Field(default=None, max_length=_MAX_ID, description="Accepted; the run names no agent")
    app_id: str | None = Field(default=None, max_length=_MAX_ID, description="Accepted; Stratus has no apps")
    ext: dict[str, Any] | None = Field(default=None, description="Accepted, not used")


class CozeWorkflowRunRequest(CozeWorkflowStreamRequest):
    """``POST /coze/v1/workflow/run``."""

    is_async: bool = Field(default=False, description="true: answer the execute_id at once (poll run_histories); "
                                                      "false: wait for the result (up to 25 s)")


class CozeWorkflowResumeRequest(_Request):
    """``POST /coze/v1/workflow/stream_resume``: answer the form an interrupt showed."""

    workflow_id: str = Field(min_length=1, max_length=_MAX_ID)
    event_id: str = Field(min_length=1, max_length=300, description="interrupt_data.event_id of the Interrupt")
    resume_data: str = Field(max_length=100_000, description="A JSON object of the form's fields (and `action` "
                                                             "for a form with actions); plain text answers a form "
                                                             "of one field")
    interrupt_type: int = Field(ge=0, le=1000, description="interrupt_data.type of the Interrupt (5)")


class CozeWorkflowChatRequest(_Request):
    """``POST /coze/v1/workflows/chat``: a chatflow answers the last user message."""

    workflow_id: str = Field(min_length=1, max_length=_MAX_ID, description="A chatflow's id")
    additional_messages: list[CozeEnterMessage] = Field(min_length=1, max_length=100,
                                                        description="The last is the user's question")
    parameters: dict[str, Any] | None = Field(default=None, description="Refused unless empty: a chatflow's "
                                                                        "run takes the query only")
    app_id: str | None = Field(default=None, max_length=_MAX_ID)
    bot_id: str | None = Field(default=None, max_length=_MAX_ID)
    conversation_id: str | None = Field(default=None, max_length=_MAX_ID,
                                        description="Refused: the chatflow's run is a conversation of its own")
    ext: dict[str, str] | None = None


class CozeWorkflowListQuery(_Query):
    workspace_id: str | None = Field(default=None, max_length=_MAX_ID, description="Accepted; one tenant is one "
                                                                                   "workspace")
    workflow_mode: Literal["workflow", "chatflow"] | None = Field(default=None, description="Accepted, not a "
                                                                                           "filter")
    app_id: str | None = Field(default=None, max_length=_MAX_ID, description="Accepted; Stratus has no apps")
    publish_status: Literal["all", "published_online", "unpublished_draft"] | None = Field(
        default=None, description="Only published or only unpublished workflows (default all)")
    page_num: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=20, ge=1, le=100)


class CozeWorkflowVersionsQuery(_Query):
    publish_status: Literal["all", "published_online", "unpublished_draft"] | None = Field(
        default=None, description="Versions are published: unpublished_draft lists none")
    page_size: int = Field(default=10, ge=1, le=MAX_VERSION_PAGE)
    page_token: str | None = Field(default=None, max_length=20, description="next_page_token of the page before")


# --- Answers -------------------------------------------------------------------------------------


class CozeWorkflowUsage(BaseModel):
    token_count: int = 0
    output_count: int = 0
    input_count: int = 0


class CozeWorkflowRunAnswer(BaseModel):
    """The whole answer of ``/v1/workflow/run``: Coze puts the run's id, debug URL and usage
    beside ``data``, not in it."""

    code: Literal[0] = 0
    msg: Literal[""] = ""
    data: str = Field(description="The run's outputs as a JSON string (empty for is_async)")
    execute_id: str = Field(description="The run's id: poll /v1/workflows/{workflow_id}/run_histories/{execute_id}")
    debug_url: str = Field(default="", description="Always empty (Stratus has no debug page)")
    usage: CozeWorkflowUsage
    detail: wire.CozeDetail


class CozeRunHistory(BaseModel):
    execute_id: str
    execute_status: Literal["Success", "Running", "Fail"]
    bot_id: str = "0"
    connector_id: str = "1024"
    connector_uid: str
    run_mode: int = Field(description="0 sync, 1 streaming, 2 async")
    logid: str
    create_time: int
    update_time: int
    output: str = Field(description="The outputs as a JSON string (empty until Success)")
    error_code: int
    error_message: str
    debug_url: str = ""
    usage: CozeWorkflowUsage
    is_output_trimmed: bool = False


class CozeRunHistories(RootModel[list[CozeRunHistory]]):
    """``data`` of run_histories: the one run."""


class CozeWorkflowUser(BaseModel):
    id: str
    name: str


class CozeWorkflowBasic(BaseModel):
    workflow_id: str
    workflow_name: str
    description: str
    icon_url: str = ""
    app_id: str = ""
    created_at: int
    updated_at: int
    creator: CozeWorkflowUser | None = None


class CozeWorkflowInfo(BaseModel):
    workflow_detail: CozeWorkflowBasic


class CozeWorkflowList(BaseModel):
    items: list[CozeWorkflowBasic]
    has_more: bool


class CozeWorkflowVersion(BaseModel):
    version: str = Field(description="The version's number")
    description: str
    created_at: str = Field(description="Unix seconds, as text (as Coze sends them)")
    updated_at: str
    workflow_id: str
    creator: CozeWorkflowUser


class CozeWorkflowVersionList(BaseModel):
    items: list[CozeWorkflowVersion]
    has_more: bool
    next_page_token: str | None = None


# --- Events --------------------------------------------------------------------------------------


class CozeWorkflowMessage(BaseModel):
    content: str = Field(description="The end output: the run's outputs as a JSON string")
    node_title: str
    node_seq_id: str
    node_is_finish: bool
    ext: dict[str, Any] | None = None
    usage: CozeWorkflowUsage | None = None


class CozeWorkflowErrorData(BaseModel):
    error_code: int
    error_message: str


class CozeInterruptData(BaseModel):
    event_id: str = Field(description="Send it back to stream_resume")
    type: int = Field(description="5: an input node's form")


class CozeWorkflowInterrupt(BaseModel):
    interrupt_data: CozeInterruptData
    node_title: str


class CozeWorkflowDone(BaseModel):
    debug_url: str = ""


# --- Helpers -------------------------------------------------------------------------------------


def _not_found() -> StratusError:
    from shared.workflows.errors import WorkflowNotFound

    return WorkflowNotFound()


def _run_not_found(execute_id: str) -> StratusError:
    from shared.workflows.errors import WorkflowRunNotFound

    return WorkflowRunNotFound(details={"execute_id": execute_id})


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details={"fields": [{"field": field, "message": message,
                                                                        "type": "value_error"}]})


def _usage(tokens: int | None) -> CozeWorkflowUsage:
    # Stratus counts a run's tokens, not prompt and completion apart.
    return CozeWorkflowUsage(token_count=int(tokens or 0))


def outputs_text(outputs: dict[str, Any] | None) -> str:
    return json.dumps(outputs or {}, ensure_ascii=False, separators=(",", ":"))


def event_id(run_id: str, paused_id: str, node_id: str) -> str:
    """An interrupt's event id: the run, the position just after its pause on the run's stream,
    and the node that waits (node ids have no ``/``: ``[A-Za-z0-9_-]``)."""
    return f"{run_id}/{paused_id}/{node_id}"


def parse_event_id(value: str) -> tuple[uuid.UUID, str, str]:
    """The run id, stream position and node of an interrupt's event id (4000 if malformed).
    The position is checked here, before the pause is answered: found bad only when following
    the resumed run, the answer would stand and the client's stream would end empty."""
    from shared.chat.events import valid_event_id

    parts = value.split("/")
    if len(parts) == 3 and all(parts) and valid_event_id(parts[1]):
        try:
            return uuid.UUID(parts[0]), parts[1], parts[2]
        except ValueError:
            pass
    raise _invalid("event_id", "not an event id of an Interrupt: send interrupt_data.event_id as it came")


def run_error_code(error: dict[str, Any]) -> int:
    """Coze's code for a run's error (a node's failure: model failures 4013, others 5000)."""
    code = str(error.get("code") or "workflow_run_failed")
    return coze_status(StratusError(str(error.get("message") or ""), code=code))[0]


def history_status(status: str) -> Literal["Success", "Running", "Fail"]:
    if status == "succeeded":
        return "Success"
    if status in ("failed", "cancelled"):
        return "Fail"
    # Pending, running, or paused for a person's answer: not over.
    return "Running"


def frame(event_number: int, event: str, data: Any) -> bytes:
    """One stream_run event: ``id:``, ``event:`` and ``data:`` lines (cozepy reads all three)."""
    return f"id:{event_number}\n".encode() + sse(event, data)


class CozeRunStream:
    """One workflow run's stream as Coze's (:class:`shared.http.dialect.StreamTranslator`).
    ``workflow.finished`` succeeded is the end node's ``Message`` (the outputs as JSON, with the
    run's usage); failed or cancelled, an ``Error``; ``workflow.paused`` an ``Interrupt`` whose
    ``event_id`` lets stream_resume find the run and node; ``done`` ``Done``. Node progress and
    model text have no Coze event (Coze sends Message for output and end nodes only)."""

    def __init__(self) -> None:
        self._number = 0
        self._titles: dict[str, str] = {}
        self._end_title = "End"
        self._tokens = 0
        self._failed = False

    def _frame(self, event: str, data: BaseModel) -> bytes:
        found = frame(self._number, event, data.model_dump(mode="json", exclude_none=True))
        self._number += 1
        return found

    def frames(self, event: StreamEvent) -> list[bytes]:
        kind, data = event.type, event.data
        if kind == "node.started":
            node_id = str(data.get("node_id"))
            title = str(data.get("title") or node_id)
            self._titles[node_id] = title
            if data.get("node_type") == "end":
                self._end_title = title
            return []
        if kind == "node.finished":
            self._tokens += int(data.get("tokens") or 0)
            return []
        if kind == "workflow.paused":
            node_id = str(data.get("node_id"))
            run_id = str(data.get("run_id") or "")
            return [self._frame("Interrupt", CozeWorkflowInterrupt(
                interrupt_data=CozeInterruptData(event_id=event_id(run_id, event.id, node_id), type=INTERRUPT_INPUT),
                node_title=self._titles.get(node_id, node_id)))]
        if kind == "workflow.finished":
            if data.get("status") == "succeeded":
                return [self._frame("Message", CozeWorkflowMessage(
                    content=outputs_text(data.get("outputs")), node_title=self._end_title, node_seq_id="0",
                    node_is_finish=True, usage=_usage(self._tokens)))]
            self._failed = True
            error = data.get("error") or {"code": "workflow_run_cancelled", "message": "The run was cancelled"}
            return [self._frame("Error", CozeWorkflowErrorData(error_code=run_error_code(error),
                                                               error_message=str(error.get("message") or "")))]
        if kind == "error" and not self._failed:
            self._failed = True
            return [self._frame("Error", CozeWorkflowErrorData(error_code=run_error_code(data),
                                                               error_message=str(data.get("message") or "")))]
        if kind == "done":
            return [self._frame("Done", CozeWorkflowDone())]
        return []

    def heartbeat(self) -> bytes:
        return HEARTBEAT


@dataclass(frozen=True)
class WorkflowChat:
    """A chatflow's chat: ids every event repeats. The chat and its answer are the run."""

    run_id: str
    workflow_id: str
    created_at: int

    def chat(self, status: Any, **fields: Any) -> CozeChat:
        return CozeChat(id=self.run_id, conversation_id=self.run_id, bot_id=self.workflow_id,
                        created_at=self.created_at, status=status, section_id=self.run_id, **fields)

    def message(self, content: str) -> CozeMessage:
        return CozeMessage(id=self.run_id, conversation_id=self.run_id, bot_id=self.workflow_id, chat_id=self.run_id,
                           section_id=self.run_id, role="assistant", type="answer", content=content,
                           created_at=self.created_at, updated_at=int(time.time()))


class CozeWorkflowChatStream:
    """A chatflow's run as ``/v3/chat``'s events: ``workflow.started`` is ``conversation.chat.created``
    and ``.in_progress``; ``workflow.finished`` succeeded the answer (``outputs.answer``, whole) as one
    ``conversation.message.delta`` and its ``conversation.message.completed``, then
    ``conversation.chat.completed`` with usage; failed or cancelled ``conversation.chat.failed``
    with ``last_error``; ``done`` ``done``."""

    def __init__(self, chat: WorkflowChat) -> None:
        self._chat = chat
        self._tokens = 0
        self._began = False
        self._failed = False

    @staticmethod
    def _dump(model: BaseModel) -> dict[str, Any]:
        return model.model_dump(mode="json", exclude_none=True)

    def _failure(self, error: dict[str, Any], code: int | None = None) -> bytes:
        self._failed = True
        last = CozeChatError(code=code or run_error_code(error), msg=str(error.get("message") or ""))
        return sse("conversation.chat.failed", self._dump(self._chat.chat(
            "failed", failed_at=int(time.time()), last_error=last, usage=CozeChatUsage(token_count=self._tokens))))

    def frames(self, event: StreamEvent) -> list[bytes]:
        chat, kind, data = self._chat, event.type, event.data
        if kind == "workflow.started" and not self._began:
            self._began = True
            return [sse("conversation.chat.created", self._dump(chat.chat("created"))),
                    sse("conversation.chat.in_progress", self._dump(chat.chat("in_progress")))]
        if kind == "node.finished":
            self._tokens += int(data.get("tokens") or 0)
            return []
        if kind == "workflow.finished":
            if data.get("status") != "succeeded":
                return [self._failure(data.get("error") or {"code": "workflow_run_cancelled",
                                                            "message": "The run was cancelled"})]
            answer = str((data.get("outputs") or {}).get("answer") or "")
            usage = CozeChatUsage(token_count=self._tokens)
            return [sse("conversation.message.delta", self._dump(chat.message(answer))),
                    sse("conversation.message.completed", self._dump(chat.message(answer))),
                    sse("conversation.chat.completed", self._dump(chat.chat(
                        "completed", completed_at=int(time.time()), usage=usage)))]
        if kind == "error" and not self._failed:
            return [self._failure(data)]
        if kind == "workflow.paused" and not self._failed:
            from shared.facades.coze.chat import DONE

            # The stream ends at the pause and this chat has no turn to answer it in: say so, and
            # where the form is answered, rather than leave the chat in progress for ever.
            node = str(data.get("node_id") or "")
            run = self._chat.run_id
            return [self._failure({"message": (
                f"The chatflow waits for a person's input at node {node!r}, which Coze's workflow chat cannot "
                f"answer: answer it with POST /api/v1/workflow-runs/{run}/resume (or cancel it with POST "
                f"/api/v1/workflow-runs/{run}/cancel)")}, wire.INVALID_PARAM), DONE]
        if kind == "done":
            from shared.facades.coze.chat import DONE

            return [DONE]
        return []

    def heartbeat(self) -> bytes:
        return HEARTBEAT


def until_paused(batches: Iterable[list[StreamEvent]]) -> Iterator[list[StreamEvent]]:
    """A run's event batches up to its pause: Coze's stream ends at the Interrupt (the client
    resumes it with stream_resume)."""
    for batch in batches:
        paused = next((index for index, event in enumerate(batch) if event.type == "workflow.paused"), None)
        if paused is not None:
            yield batch[:paused + 1]
            return
        yield batch


def _timestamp(value: datetime | None) -> int:
    return wire.timestamp(value)


def _basic(summary: WorkflowSummary) -> CozeWorkflowBasic:
    creator = CozeWorkflowUser(id=str(summary.created_by), name="") if summary.created_by else None
    return CozeWorkflowBasic(workflow_id=str(summary.id), workflow_name=summary.name,
                             description=summary.description, created_at=_timestamp(summary.created_at),
                             updated_at=_timestamp(summary.updated_at), creator=creator)


@dataclass(frozen=True)
class StartedRun:
    run: WorkflowRunOut


class CozeWorkflows:
    def __init__(self, workflows: Callable[[], WorkflowService], runs: Callable[[], WorkflowRunService]) -> None:
        self._workflows = workflows
        self._runs = runs

    # -- which workflow ------------------------------------------------------------------------
    @staticmethod
    def workflow_id(principal: Principal, value: str) -> uuid.UUID:
        """The workflow a Coze id names, if the key reaches it (else Coze's not-found)."""
        from shared.workflows.runs_service import bound_workflow

        found = wire.parse_id(value, _not_found())
        bound = bound_workflow(principal)
        if bound is not None and bound != found:
            raise _not_found()
        return found

    # -- runs ----------------------------------------------------------------------------------
    def start(self, principal: Principal, body: CozeWorkflowStreamRequest, mode: Literal["sync", "async", "stream"],
              query: str | None = None) -> WorkflowRunOut:
        from shared.workflows.runs_api import StartRun

        workflow_id = self.workflow_id(principal, body.workflow_id)
        request = StartRun.model_construct(inputs=dict(body.parameters or {}), version=None, mode=mode, query=query)
        return self._runs().start_run(principal, workflow_id, request)

    @staticmethod
    def run_result(run: WorkflowRunOut, is_async: bool, wait_s: float, logid: str) -> dict[str, Any]:
        """The body of ``/v1/workflow/run``: Coze puts execute_id, debug_url and usage beside data."""
        from shared.workflows.runs_service import is_final

        if not is_async:
            if run.status == "paused" or not is_final(run):
                waiting = "waits for a person's input (answer it with stream_run and stream_resume)" \
                    if run.status == "paused" else f"did not finish within {wait_s:g} s"
                raise wire.CozeError(wire.INVALID_PARAM, f"The run {waiting}; it goes on as execute_id {run.id}. Run "
                                     "long workflows with is_async: true (then poll run_histories) or stream_run",
                                     status=409, code="coze_workflow_run_pending",
                                     details={"execute_id": str(run.id)})
            if run.status != "succeeded":
                error = run.error
                raise wire.CozeError(run_error_code({"code": error.code if error else None}),
                                     error.message if error else f"The run ended {run.status}",
                                     status=409, code="coze_workflow_run_failed",
                                     details={"execute_id": str(run.id)})
        return CozeWorkflowRunAnswer(data="" if is_async else outputs_text(run.outputs), execute_id=str(run.id),
                                     usage=_usage(run.tokens), detail=wire.CozeDetail(logid=logid)).model_dump()

    def follow(self, principal: Principal, run_id: uuid.UUID, after: str | None, block_ms: int,
               follow_s: float) -> Iterator[list[StreamEvent]]:
        """The run's events as Coze streams them: up to a pause, the succeeded run's outputs whole."""
        from shared.workflows.run_stream import Follow

        batches = self._runs().follow_run(principal, run_id, after, Follow(block_ms=block_ms, follow_s=follow_s))
        for batch in until_paused(batches):
            yield [self._whole(principal, run_id, event) for event in batch]

    def _whole(self, principal: Principal, run_id: uuid.UUID, event: StreamEvent) -> StreamEvent:
        # Events cut outputs to previews; Coze's end message carries them whole (one read, once).
        if event.type == "workflow.finished" and event.data.get("status") == "succeeded":
            run = self._runs().get_run(principal, run_id)
            return StreamEvent(event.id, event.type, {**event.data, "outputs": run.outputs or {}})
        if event.type == "workflow.paused":
            return StreamEvent(event.id, event.type, {**event.data, "run_id": str(run_id)})
        return event

    def resume(self, principal: Principal, body: CozeWorkflowResumeRequest) -> tuple[uuid.UUID, str]:
        """Answer the pause the event id names; the run and the stream position to follow from."""
        from shared.workflows.runs_api import ResumeRun

        workflow_id = self.workflow_id(principal, body.workflow_id)
        run_id, after, node_id = parse_event_id(body.event_id)
        if body.interrupt_type != INTERRUPT_INPUT:
            raise _invalid("interrupt_type", f"send interrupt_data.type of the Interrupt ({INTERRUPT_INPUT})")
        run = self._runs().get_run(principal, run_id)
        if run.workflow_id != workflow_id:
            raise _run_not_found(str(run_id))
        answer, action = self._answer(run, body.resume_data)
        self._runs().resume_run(principal, run_id, ResumeRun.model_construct(node_id=node_id, answer=answer,
                                                                              action=action))
        return run_id, after

    @staticmethod
    def _answer(run: WorkflowRunOut, text: str) -> tuple[dict[str, Any], str | None]:
        """``resume_data`` as the form's answer: a JSON object of its fields (``action`` picks a
        button when no field has that name), or plain text for the form's one field."""
        fields = [item.name for item in run.pause.form.fields] if run.pause and run.pause.form else []
        actions = bool(run.pause and run.pause.form and run.pause.form.actions)
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            answer = dict(parsed)
            action = answer.pop("action", None) if actions and "action" not in fields else None
            return answer, str(action) if action is not None else None
        if len(fields) == 1:
            return {fields[0]: text}, None
        raise _invalid("resume_data", "send a JSON object of the form's fields ("
                       + (", ".join(fields) or "none") + ")")

    def history(self, principal: Principal, workflow_id: str, execute_id: str, logid: str) -> list[CozeRunHistory]:
        found = self.workflow_id(principal, workflow_id)
        run = self._runs().get_run(principal, wire.parse_id(execute_id, _run_not_found(execute_id)))
        if run.workflow_id != found:
            raise _run_not_found(execute_id)
        error_code = run_error_code({"code": run.error.code}) if run.error and run.status != "succeeded" else 0
        updated = run.finished_at or run.started_at or run.created_at
        return [CozeRunHistory(
            execute_id=str(run.id), execute_status=history_status(run.status),
            connector_uid=str(run.created_by or ""), run_mode={"sync": 0, "stream": 1}.get(run.mode, 2),
            logid=logid, create_time=_timestamp(run.created_at), update_time=_timestamp(updated),
            output=outputs_text(run.outputs) if run.status == "succeeded" else "", error_code=error_code,
            error_message=run.error.message if run.error and run.status != "succeeded" else "",
            usage=_usage(run.tokens))]

    # -- chat ----------------------------------------------------------------------------------
    def start_chat(self, principal: Principal, body: CozeWorkflowChatRequest) -> tuple[WorkflowRunOut, WorkflowChat]:
        from shared.facades.coze.chat import dialogue

        if body.conversation_id:
            raise _invalid("conversation_id", "a chatflow's Coze chat runs in a conversation of its own: leave "
                           "conversation_id out (chat with an agent bound to the chatflow through /v3/chat to keep "
                           "a conversation)")
        if body.parameters:
            raise _invalid("parameters", "a chatflow's run takes the query only: leave parameters out")
        question, _ = dialogue(body.additional_messages)
        workflow_id = self.workflow_id(principal, body.workflow_id)
        document = self._workflows().resolve_for_run(principal.tenant, workflow_id).document
        if document.mode != "chatflow":
            raise _invalid("workflow_id", "this workflow is not a chatflow: run it with /v1/workflow/run or "
                           "/v1/workflow/stream_run")
        run = self.start(principal, body.model_copy(update={"parameters": None}), "stream",  # type: ignore[arg-type]
                         query=question)
        return run, WorkflowChat(str(run.id), str(workflow_id), _timestamp(run.created_at))

    # -- workflows -----------------------------------------------------------------------------
    def list_workflows(self, principal: Principal, query: CozeWorkflowListQuery) -> CozeWorkflowList:
        from shared.db.paging import page_request
        from shared.workflows.repository import WORKFLOW_SORTS
        from shared.workflows.runs_service import bound_workflow

        bound = bound_workflow(principal)
        items: list[WorkflowSummary]
        if bound is not None:
            try:
                items = [self._workflows().get_workflow(principal, bound)] if query.page_num == 1 else []
            except StratusError:
                items = []
            has_more = False
        else:
            listed = self._workflows().list_workflows(
                principal, None, page_request(query.page_num, query.page_size, "-updated_at", WORKFLOW_SORTS))
            items, has_more = list(listed.items), listed.page * listed.limit < listed.total
        if query.publish_status == "published_online":
            items = [item for item in items if item.published_version is not None]
        elif query.publish_status == "unpublished_draft":
            items = [item for item in items if item.published_version is None]
        return CozeWorkflowList(items=[_basic(item) for item in items], has_more=has_more)

    def info(self, principal: Principal, workflow_id: str) -> CozeWorkflowInfo:
        found = self.workflow_id(principal, workflow_id)
        return CozeWorkflowInfo(workflow_detail=_basic(self._workflows().get_workflow(principal, found)))

    def versions(self, principal: Principal, workflow_id: str,
                 query: CozeWorkflowVersionsQuery) -> CozeWorkflowVersionList:
        from shared.db.paging import page_request
        from shared.workflows.repository import VERSION_SORTS

        found = self.workflow_id(principal, workflow_id)
        if query.publish_status == "unpublished_draft":
            self._workflows().workflow_id(principal.tenant, found)
            return CozeWorkflowVersionList(items=[], has_more=False, next_page_token="")
        page_num = 1
        if query.page_token:
            if not query.page_token.isdigit() or not 1 <= int(query.page_token) <= 1_000_000:
                raise _invalid("page_token", "send next_page_token of the page before")
            page_num = int(query.page_token)
        listed = self._workflows().list_versions(principal, found, page_request(page_num, query.page_size,
                                                                                "-number", VERSION_SORTS))
        has_more = listed.page * listed.limit < listed.total
        items = [CozeWorkflowVersion(
            version=str(item.number), description=item.note or item.description,
            created_at=str(_timestamp(item.created_at)), updated_at=str(_timestamp(item.created_at)),
            workflow_id=str(item.workflow_id),
            creator=CozeWorkflowUser(id=str(item.created_by or ""), name="")) for item in listed.items]
        return CozeWorkflowVersionList(items=items, has_more=has_more,
                                       next_page_token=str(page_num + 1) if has_more else "")


def coze_workflows() -> CozeWorkflows:
    from shared.workflows.wiring_api import workflow_run_service, workflow_service

    return CozeWorkflows(workflow_service, workflow_run_service)
