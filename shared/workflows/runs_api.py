"""Workflow run API shapes: starting a run (sync or async), a run with its node history and its
pending form while paused, a list of runs, resuming a paused run, cancelling."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.validation import INT4_MAX, RequestModel

RunStatusOut = Literal["pending", "running", "paused", "succeeded", "failed", "cancelled"]
NodeRunStatusOut = Literal["running", "succeeded", "failed", "skipped", "cancelled"]
RUN_SORTS = frozenset({"created_at", "finished_at", "elapsed_ms"})
# The longest user message a chatflow run takes (a chat message's bound).
MAX_QUERY_CHARS = 32_000


class StartRun(RequestModel):
    inputs: dict[str, Any] = Field(default_factory=dict,
                                   description="The start node's variables by name (GET the workflow for what it "
                                               "takes); a missing or wrong one answers 422 naming `inputs.<name>`")
    version: Annotated[int, Field(ge=1, le=INT4_MAX)] | Literal["draft"] | None = Field(
        default=None, description="The published version to run; omitted: the latest; `\"draft\"`: the draft "
                                  "(validated as publishing would; needs workflow:write and a key not bound to an "
                                  "app)")
    mode: Literal["sync", "async", "stream"] = Field(
        default="sync", description="`sync`: wait for the result up to the sync bound (200 with the finished run, "
                                    "else 202 with the run still going); `async`: answer 202 at once with "
                                    "`Location: /api/v1/workflow-runs/{id}` to poll; `stream`: answer 200 "
                                    "`text/event-stream` with the run's events until `done` (resume with "
                                    "`GET /api/v1/workflow-runs/{id}/events` and `Last-Event-ID`)")
    query: str | None = Field(
        default=None, max_length=MAX_QUERY_CHARS,
        description="A chatflow's user message (`sys.query`; omitted: empty). Such a run is outside any "
                    "conversation: its conversation variables start from their defaults and what it changes is "
                    "kept on the run only (chat with an agent bound to the chatflow to keep them). Refused for a "
                    "workflow")


_SORT_FIELD = "-?(?:" + "|".join(sorted(RUN_SORTS)) + ")"


class RunListQuery(RequestModel):
    """The query string of a workflow's runs (numbers arrive as text: not strict)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=False)

    status: RunStatusOut | None = Field(default=None, description="Only runs in this status")
    page: int = Field(default=1, ge=1, le=1_000_000, description="Page number, from 1")
    limit: int = Field(default=20, ge=1, le=100, description="Items per page (max 100)")
    sort: str = Field(default="-created_at", max_length=200, pattern=f"^{_SORT_FIELD}(?:,{_SORT_FIELD})*$",
                      description="Comma-separated fields, '-' for descending; sortable fields: "
                                  + ", ".join(sorted(RUN_SORTS)))


class RunEventsQuery(RequestModel):
    """The query string of a run's event replay."""

    # For clients that cannot set the Last-Event-ID header (EventSource reconnects set it).
    last_event_id: str | None = Field(default=None, max_length=64,
                                      description="Replay after this event id (the Last-Event-ID header wins)")


class ResumeRun(RequestModel):
    node_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                         description="The human input node the run waits on (`pause.node_id` of the run)")
    answer: dict[str, Any] = Field(default_factory=dict,
                                   description="The form's fields by name (`pause.form.fields`); a missing required "
                                               "field or a value of the wrong type answers 422 naming `answer.<name>`")
    action: str | None = Field(default=None, max_length=64,
                               description="The action picked, when the form has actions (`pause.form.actions`): the "
                                           "branch the run continues on")


class FormFieldOut(BaseModel):
    name: str
    label: str
    type: Literal["text", "paragraph", "number", "select", "boolean"]
    required: bool
    default: Any = None
    options: list[str]
    max_length: int | None = None


class FormActionOut(BaseModel):
    id: str
    title: str


class FormOut(BaseModel):
    content: str = Field(description="What the person reads above the fields (its references rendered when the "
                                     "run paused)")
    fields: list[FormFieldOut]
    actions: list[FormActionOut] = Field(description="Buttons: the answer names one (`action`); empty: none")


class PauseOut(BaseModel):
    """What a paused run waits for: a person's answer to a human input node's form."""

    node_id: str
    form: FormOut
    paused_at: datetime | None
    expires_at: datetime | None = Field(description="When the wait times out (the node's `on_timeout` then applies); "
                                                    "null: it does not")


class RunErrorOut(BaseModel):
    code: str = Field(description="e.g. `code_timeout`, `llm_model_unavailable`, `workflow_run_cancelled`")
    message: str = Field(description="What went wrong and what to do next")
    node_id: str | None = Field(default=None, description="The node whose failure failed the run")


class NodeErrorOut(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ChildRunOut(BaseModel):
    """A run of a container's child node, for one item (iteration) or round (loop)."""

    node_id: str
    index: int = Field(description="The item's index (iteration) or the round (loop), from 0")
    status: Literal["succeeded", "failed"]
    handle: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    error: NodeErrorOut | None
    attempts: int
    tokens: int
    elapsed_ms: int


class NodeRunOut(BaseModel):
    """One node of the run: how it ended, what it took and produced. A node handled by its error
    strategy (default value, failure branch) succeeded and still shows its error."""

    node_id: str
    node_type: str
    title: str
    status: NodeRunStatusOut
    handle: str | None = Field(description="The branch it left by: `source`, an if/else case id, `false`, "
                                           "`fail-branch`")
    inputs: dict[str, Any] | None = Field(description="The values it resolved from the run's variables")
    outputs: dict[str, Any] | None
    error: NodeErrorOut | None
    attempts: int
    tokens: int = Field(description="Model tokens (prompt + completion) it used")
    started_at: datetime
    finished_at: datetime | None
    elapsed_ms: int | None
    children: list[ChildRunOut] | None = Field(
        default=None, description="A container's (iteration, loop) children's runs, by item or round")


class ChatRunOut(BaseModel):
    """A chatflow run's chat context."""

    conversation_id: uuid.UUID | None = Field(description="The conversation whose turn it ran (null: a run "
                                                          "started through the runs API)")
    message_id: uuid.UUID | None = Field(description="The answer message it wrote")
    query: str = Field(description="The user's message (sys.query)")
    dialogue_count: int = Field(description="The turn's number in the conversation (sys.dialogue_count)")


class WorkflowRunSummary(BaseModel):
    id: uuid.UUID
    workflow_id: uuid.UUID
    version: int | None = Field(description="The published version it ran; null: the draft")
    status: RunStatusOut
    mode: Literal["sync", "async", "stream"]
    error: RunErrorOut | None
    elapsed_ms: int | None = Field(description="From start to end (null while running)")
    tokens: int = Field(description="Model tokens used by all its nodes")
    transitions: int = Field(description="Step Functions state transitions the run cost (what AWS bills per run)")
    created_by: uuid.UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    chat: ChatRunOut | None = Field(default=None, description="A chatflow run's chat context (null for a "
                                                              "workflow's run)")


class WorkflowRunOut(WorkflowRunSummary):
    inputs: dict[str, Any] = Field(description="The inputs as validated (defaults applied)")
    outputs: dict[str, Any] | None = Field(description="The end nodes' outputs; a chatflow's `answer` (null until "
                                                       "it succeeds)")
    nodes: list[NodeRunOut] = Field(description="Every node it settled, in the order it settled them")
    pause: PauseOut | None = Field(default=None, description="While `paused`: the node waiting and its form (answer "
                                                             "it with POST /api/v1/workflow-runs/{id}/resume)")
