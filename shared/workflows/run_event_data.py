"""A workflow run's events as streaming clients receive them (``POST /api/v1/workflows/{id}/runs``
with ``"mode": "stream"`` and ``GET /api/v1/workflow-runs/{id}/events``): one model per event
type, which OpenAPI documents from the catalog, and :func:`wire_event`, the serializer from the
run's internal stream (what the interpreter and the engine append, shared/workflows/run_events.py)
to these types (docs/adr/0035-workflow-run-streaming.md).

Each event keeps the id the run's stream gave it, so ``Last-Event-ID`` resumes exactly after it.
Import-light: pydantic and the runs API's shapes only.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.cache.ports import StreamEvent
from shared.workflows.runs_api import FormOut

logger = logging.getLogger(__name__)

# An output value longer than this (as JSON) is cut in an event; the run has it whole.
PREVIEW_CHARS = 256
# Outputs named in one event at most (the rest only in the run).
PREVIEW_OUTPUTS = 50


class _Event(BaseModel):
    # What the engine adds later reaches clients only once a model names it.
    model_config = ConfigDict(extra="ignore")


class _InContainer(_Event):
    container_id: str | None = Field(default=None, description="The iteration or loop the node runs in, if any")
    index: int | None = Field(default=None, description="Inside a container: the item (iteration) or round "
                                                        "(loop), from 0")


class WorkflowStartedEvent(_Event):
    """The run began (its first step ran)."""

    run_id: str
    workflow_id: str
    version: int | None = Field(default=None, description="The published version it runs; null: the draft")

    @field_validator("version", mode="before")
    @classmethod
    def _draft_is_null(cls, value: Any) -> Any:
        # The interpreter's context names the draft "draft"; the run record (and so its events) null.
        return None if value == "draft" else value


class NodeStartedEvent(_InContainer):
    node_id: str
    node_type: str
    title: str = ""


class NodeErrorEvent(_Event):
    code: str
    message: str
    details: dict[str, Any] | None = None


class NodeFinishedEvent(_InContainer):
    """A node settled. A node handled by its error strategy succeeded and still carries its error."""

    node_id: str
    node_type: str
    status: Literal["succeeded", "failed", "skipped", "cancelled"]
    handle: str | None = Field(default=None, description="The branch it left by (`source`, a case id, `false`, "
                                                         "`fail-branch`)")
    outputs: dict[str, Any] = Field(
        default_factory=dict, description=f"Its outputs, each value as it is when its JSON is at most "
                                          f"{PREVIEW_CHARS} characters, else cut (strings: their first "
                                          f"{PREVIEW_CHARS} characters; other values: a short description); "
                                          f"GET the run for whole values")
    outputs_truncated: list[str] = Field(default_factory=list,
                                         description="The outputs cut or left out of `outputs`")
    elapsed_ms: int | None = None
    attempts: int = 1
    tokens: int = Field(default=0, description="Model tokens (prompt + completion) it used")
    error: NodeErrorEvent | None = None
    finished_at: datetime | None = Field(default=None, description="When it ended (UTC)")


class NodeDeltaEvent(_InContainer):
    """A piece of an LLM node's text as the model streams it."""

    node_id: str
    text: str


class IterationNextEvent(_Event):
    """An iteration starts its item ``index``."""

    node_id: str
    index: int = Field(description="The item, from 0")
    container_id: str | None = Field(default=None, description="The container it runs in, if nested")


class LoopNextEvent(_Event):
    """A loop starts its round ``index``."""

    node_id: str
    index: int = Field(description="The round, from 0")
    container_id: str | None = Field(default=None, description="The container it runs in, if nested")


class WorkflowPausedEvent(_Event):
    """The run waits for a person's answer to a human-input node's form
    (``POST /api/v1/workflow-runs/{id}/resume``); the stream stays open."""

    node_id: str
    form: FormOut = Field(description="The form to answer (`content`, typed `fields`, `actions`), as the run's "
                                      "`pause` shows it")
    expires_at: datetime | None = Field(default=None, description="When the pause times out (its default or a "
                                                                  "failure, as the node says); null: never")


class WorkflowResumedEvent(_Event):
    """The paused node got its answer (or its timeout came); the run goes on."""

    node_id: str
    timed_out: bool = Field(default=False, description="The pause timed out (no answer came)")


class RunErrorEvent(_Event):
    code: str = Field(description="e.g. `code_timeout`, `llm_model_unavailable`, `workflow_run_cancelled`")
    message: str
    node_id: str | None = Field(default=None, description="The node whose failure failed the run")


class WorkflowFinishedEvent(_Event):
    status: Literal["succeeded", "failed", "cancelled"]
    outputs: dict[str, Any] | None = Field(
        default=None, description="Succeeded: the end nodes' outputs, cut as a node's are; GET the run for whole "
                                  "values")
    outputs_truncated: list[str] = Field(default_factory=list)
    error: RunErrorEvent | None = None


class RunDoneEvent(_Event):
    """The last event: nothing follows."""

    status: Literal["succeeded", "failed", "cancelled"]


# The wire's event types and their models, in the order a run sends them.
EVENT_MODELS: dict[str, type[_Event]] = {
    "workflow.started": WorkflowStartedEvent,
    "node.started": NodeStartedEvent,
    "node.delta": NodeDeltaEvent,
    "node.finished": NodeFinishedEvent,
    "iteration.next": IterationNextEvent,
    "loop.next": LoopNextEvent,
    "workflow.paused": WorkflowPausedEvent,
    "workflow.resumed": WorkflowResumedEvent,
    "workflow.finished": WorkflowFinishedEvent,
    "error": RunErrorEvent,
    "done": RunDoneEvent,
}
# The engine's own names (shared/workflows/engine/runner.py) where a stream holds them as is.
_ENGINE_NAMES = {"node_started": "node.started", "node_finished": "node.finished", "text_chunk": "node.delta",
                 "iteration_next": "iteration.next", "loop_next": "loop.next"}


def wire_event(event: StreamEvent) -> StreamEvent | None:
    """The event a client receives for ``event`` of the run's stream (same id), or None for an
    internal event that has no wire type. Data the model does not accept is sent as stored (and
    logged): an event is never dropped, so a client's position stays exact."""
    kind = _ENGINE_NAMES.get(event.type, event.type)
    model = EVENT_MODELS.get(kind)
    if model is None:
        logger.debug("a workflow run event with no wire type is not streamed", extra={"event_type": event.type})
        return None
    try:
        data = model.model_validate(event.data).model_dump(mode="json")
    except ValidationError as exc:
        logger.warning("a workflow run event did not match its model; sent as stored",
                       extra={"event_type": kind, "problems": exc.error_count()})
        data = dict(event.data)
    return StreamEvent(event.id, kind, data)


def summarize_outputs(outputs: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """Outputs as an event carries them: short values whole, long ones cut (see
    :class:`NodeFinishedEvent`), at most :data:`PREVIEW_OUTPUTS` names; and the names cut or left out."""
    previews: dict[str, Any] = {}
    truncated: list[str] = []
    for position, (name, value) in enumerate(sorted((outputs or {}).items())):
        if position >= PREVIEW_OUTPUTS:
            truncated.append(name)
            continue
        size = len(json.dumps(value, ensure_ascii=False, default=str))
        if size <= PREVIEW_CHARS:
            previews[name] = value
            continue
        truncated.append(name)
        if isinstance(value, str):
            previews[name] = value[:PREVIEW_CHARS]
        elif isinstance(value, list):
            previews[name] = f"<list of {len(value)} items, {size} characters as JSON>"
        elif isinstance(value, dict):
            previews[name] = f"<object of {len(value)} keys, {size} characters as JSON>"
        else:
            previews[name] = f"<{type(value).__name__}, {size} characters as JSON>"
    return previews, truncated
