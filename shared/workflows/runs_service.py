"""Workflow run use cases: start a run (an execution of the interpreter state machine over a
snapshot of the version it runs), wait for it within the sync bound, read it with its node
history (and its pending form while paused), list a workflow's runs, resume a run paused for
human input, cancel one, and reconcile runs whose execution ended without a final record
(docs/adr/0033-workflow-runs.md, docs/adr/0036-human-input-and-sub-workflows.md)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.auth.principal import Principal
from shared.cache.ports import EventStream, StreamEvent
from shared.db.database import Database
from shared.db.paging import Page, PageRequest
from shared.db.queries import one, page_of, rows
from shared.errors import Unavailable, ValidationFailed
from shared.files.contract import FileReferences
from shared.observability import tracer
from shared.workflows.contract import DRAFT, WorkflowResolver
from shared.workflows.errors import (
    WorkflowCallCycle,
    WorkflowDraftNotAllowed,
    WorkflowNotAllowed,
    WorkflowRunEventIdInvalid,
    WorkflowRunEventsExpired,
    WorkflowRunFinished,
    WorkflowRunNotFound,
    WorkflowRunNotPaused,
)
from shared.workflows.interpreter import execution_name, start_state
from shared.workflows.ports import FINAL_STATUSES, Executions, RunError, RunEvents, RunRef
from shared.workflows.run_events import FINAL_EVENT, stream_name
from shared.workflows.run_store import ChatRun, PostgresRunStore, run_row
from shared.workflows.run_stream import Follow, RunFollower
from shared.workflows.runs_api import (
    ChatRunOut,
    NodeErrorOut,
    NodeRunOut,
    PauseOut,
    ResumeRun,
    RunErrorOut,
    StartRun,
    WorkflowRunOut,
    WorkflowRunSummary,
)

logger = logging.getLogger(__name__)

WORKFLOW_RESOURCE = "workflow"
PAUSED_EVENT = "workflow.paused"
# What a run's error says when the local runtime's restart (reconcile_interrupted_work) ended it.
INTERRUPTED = "workflow_run_interrupted"
_SUMMARY_COLUMNS = """id, tenant_id, workflow_id, version, status, mode, error_code, error_message, error_node_id,
    transitions, tokens, created_by, created_at, started_at, finished_at, elapsed_ms, conversation_id, message_id,
    query, dialogue_count"""
# Runs' own sort keys (the list's ``sort``).
_LIVE = "tenant_id = %(tenant)s AND workflow_id = %(workflow)s AND (%(status)s::text IS NULL OR status = %(status)s)"

@dataclass(frozen=True)
class RunSettings:
    sync_wait_s: float
    stale_after_s: int
    # How long a run's events are kept (a ``done`` a follower appends lives as long).
    events_ttl_s: int = 86_400

def bound_workflow(principal: Principal) -> uuid.UUID | None:
    """The one workflow a bound key reaches. A key bound to another kind of app (an agent) is
    an app key too: its binding, which no workflow's id matches, reaches no workflow run."""
    return principal.resource_id if principal.resource_type is not None else None

def check_workflow_allowed(principal: Principal, workflow_id: uuid.UUID) -> None:
    bound = bound_workflow(principal)
    if bound is not None and bound != workflow_id:
        raise WorkflowNotAllowed(details={"workflow_id": str(workflow_id)})

def _error_out(row: dict[str, Any]) -> RunErrorOut | None:
    if row["error_message"] is None and row["error_code"] is None:
        return None
    return RunErrorOut(code=row["error_code"] or INTERRUPTED, message=row["error_message"] or "",
                       node_id=row["error_node_id"])

def _chat_out(row: dict[str, Any]) -> ChatRunOut | None:
    if row.get("query") is None:
        return None
    return ChatRunOut(conversation_id=row["conversation_id"], message_id=row["message_id"], query=row["query"],
                      dialogue_count=row["dialogue_count"] or 1)

def summary_out(row: dict[str, Any]) -> WorkflowRunSummary:
    fields = {k: v for k, v in row.items() if k in WorkflowRunSummary.model_fields and k not in ("error", "chat")}
    return WorkflowRunSummary(**fields, error=_error_out(row), chat=_chat_out(row))

# Each use case is a subsegment of the function's trace; responses (node outputs) stay out of it.
_traced = tracer.capture_method(capture_response=False)

class WorkflowRunService:
    def __init__(self, db: Database, workflows: WorkflowResolver, store: PostgresRunStore,
                 executions: Callable[[], Executions | None], events: EventStream, run_events: RunEvents,
                 settings: RunSettings, *, clock: Callable[[], float] = time.monotonic,
                 files: Callable[[], FileReferences] | None = None) -> None:
        self._db = db
        self._workflows = workflows
        self._store = store
        self._executions = executions
        self._events = events
        self._run_events = run_events
        self._settings = settings
        self._clock = clock
        # Uploaded files named by id in object inputs (docs/files.md); None: no file resolves.
        self._files = files

    def _executor(self) -> Executions:
        executions = self._executions()
        if executions is None:
            raise Unavailable("Workflow runs are not configured here (no interpreter state machine)",
                              code="workflow_runs_unavailable")
        return executions

    # Starting -------------------------------------------------------------------------------
    @_traced
    def start_run(self, principal: Principal, workflow_id: uuid.UUID, body: StartRun, *,
                  lineage: Sequence[str] = ()) -> WorkflowRunOut:
        """Start the run; with ``sync``, wait for it up to the sync bound. The answer's status
        says whether it finished. ``lineage``: the workflows whose runs started this one through
        a workflow tool, outermost first; a workflow already on it, or a path deeper than
        sub-workflows may nest, is refused (a workflow reaching itself through tools)."""
        from shared.auth.permissions import require
        from shared.workflows.configs import MAX_SUB_WORKFLOW_DEPTH
        from shared.workflows.validation import validate_inputs

        tenant = principal.tenant
        check_workflow_allowed(principal, workflow_id)
        if str(workflow_id) in lineage or len(lineage) >= MAX_SUB_WORKFLOW_DEPTH:
            path = " → ".join([*lineage, str(workflow_id)])
            raise WorkflowCallCycle(f"The workflow {workflow_id} is already running on this call path, or the path "
                                    f"is deeper than {MAX_SUB_WORKFLOW_DEPTH} ({path}): a workflow tool cannot call "
                                    "the workflow that called it; remove the tool from that workflow or agent",
                                    details={"lineage": [*lineage, str(workflow_id)]})
        if body.version == DRAFT:
            if bound_workflow(principal) is not None:
                raise WorkflowDraftNotAllowed()
            require(principal, "workflow:write")
        runnable = self._workflows.resolve_for_run(tenant, workflow_id, body.version)
        chat = None
        if runnable.document.mode == "chatflow":
            chat = ChatRun(query=body.query or "")
        elif body.query is not None:
            raise ValidationFailed("query is a chatflow's user message; this workflow is not a chatflow",
                                   code="workflow_query_unexpected", details={"fields": [{
                                       "field": "query", "type": "unexpected",
                                       "message": "only a chatflow takes a query; remove it"}]})
        from shared.workflows.file_inputs import resolve_file_inputs

        inputs = validate_inputs(runnable.document,
                                 resolve_file_inputs(runnable.document, body.inputs, tenant, self._files))
        run_id = uuid.uuid4()
        self._store.create(run_id, tenant_id=tenant, workflow_id=workflow_id, version=runnable.version,
                           document=runnable.document, mode=body.mode, inputs=inputs, created_by=principal.user_id,
                           api_key_id=principal.token_id, chat=chat, lineage=lineage)
        ref = RunRef(str(tenant), str(run_id))
        try:
            arn = self._executor().start(execution_name(str(run_id), 0), start_state(ref))
        except Exception as exc:
            # Nothing will run it: it ends failed at once rather than waiting for the reconciler.
            self._store.finish(ref, "failed", error=RunError(
                "workflow_start_failed", "The run could not be started on the workflow engine; try again"))
            if isinstance(exc, Unavailable):
                raise
            raise Unavailable("The workflow engine could not start the run; try again",
                              code="workflow_start_failed") from exc
        with self._db.transaction(tenant) as conn:
            conn.execute("UPDATE workflow_runs SET execution_arn = %s WHERE id = %s AND tenant_id = %s",
                         (arn, run_id, tenant))
        if body.mode == "sync":
            self._wait(str(run_id), self._settings.sync_wait_s)
        return self._run_out(tenant, run_id)

    def _wait(self, run_id: str, timeout_s: float) -> bool:
        """Follow the run's events until its last one or ``timeout_s``; whether it ended."""
        deadline = self._clock() + timeout_s
        after: str | None = None
        while True:
            remaining_ms = int((deadline - self._clock()) * 1000)
            if remaining_ms <= 0:
                return False
            events = self._events.read(stream_name(run_id), after, count=200, block_ms=min(remaining_ms, 5000))
            for event in events:
                if event.type in (FINAL_EVENT, PAUSED_EVENT):
                    # Over, or waiting for a person: either way nothing more comes soon.
                    return True
            if events:
                after = events[-1].id

    # Reading --------------------------------------------------------------------------------
    def _run_out(self, tenant_id: uuid.UUID, run_id: uuid.UUID, principal: Principal | None = None) -> WorkflowRunOut:
        with self._db.transaction(tenant_id) as conn:
            row = run_row(conn, tenant_id, run_id)
            if row is None:
                raise WorkflowRunNotFound(details={"run_id": str(run_id)})
            if principal is not None and bound_workflow(principal) not in (None, row["workflow_id"]):
                # A key bound to another workflow: as if the run did not exist.
                raise WorkflowRunNotFound(details={"run_id": str(run_id)})
            nodes = rows(conn, """SELECT node_id, node_type, title, status, handle, inputs, outputs, outputs_ref, error,
                                         attempts, tokens, started_at, finished_at, elapsed_ms, children, children_ref
                                    FROM node_runs WHERE run_id = %s AND tenant_id = %s ORDER BY seq""",
                         (run_id, tenant_id))
        summary = summary_out(row)
        return WorkflowRunOut(
            **summary.model_dump(), inputs=dict(row["inputs"] or {}),
            outputs=self._store.outputs(row) if row["status"] == "succeeded" else None,
            nodes=[NodeRunOut(node_id=n["node_id"], node_type=n["node_type"], title=n["title"], status=n["status"],
                              handle=n["handle"], inputs=n["inputs"], outputs=self._store.outputs(n),
                              error=NodeErrorOut.model_validate(n["error"]) if n["error"] else None,
                              attempts=n["attempts"], tokens=n["tokens"], started_at=n["started_at"],
                              finished_at=n["finished_at"], elapsed_ms=n["elapsed_ms"],
                              children=(self._store.outputs(n, "children") or {}).get("children"))
                   for n in nodes],
            pause=PauseOut(node_id=row["pause_node_id"], form=row["pause_form"], paused_at=row["paused_at"],
                           expires_at=row["pause_expires_at"]) if row["status"] == "paused" else None)

    @_traced
    def get_run(self, principal: Principal, run_id: uuid.UUID) -> WorkflowRunOut:
        return self._run_out(principal.tenant, run_id, principal)

    # Following ------------------------------------------------------------------------------
    def follow_run(self, principal: Principal, run_id: uuid.UUID, after_id: str | None,
                   bounds: Follow, *, after_field: str = "headers.last-event-id") -> Iterator[list[StreamEvent]]:
        """The run's events after ``after_id`` (all without), then live, as streaming clients
        receive them, until ``done`` (docs/adr/0035-workflow-run-streaming.md). A run of another
        tenant, or of another workflow than a bound key's, is 404; a run whose events expired 410;
        a malformed ``after_id`` 422 naming ``after_field`` (where the client sent it)."""
        from shared.chat.events import valid_event_id

        if after_id is not None and not valid_event_id(after_id):
            raise WorkflowRunEventIdInvalid(after_field)
        tenant = principal.tenant
        with self._db.transaction(tenant) as conn:
            row = run_row(conn, tenant, run_id)
        if row is None or bound_workflow(principal) not in (None, row["workflow_id"]):
            raise WorkflowRunNotFound(details={"run_id": str(run_id)})
        follower = RunFollower(self._events, lambda: self._status(tenant, run_id), self._closer(run_id),
                               clock=self._clock)
        first = follower.first(str(run_id), after_id)
        if not first and row["status"] in FINAL_STATUSES:
            if after_id is None:
                raise WorkflowRunEventsExpired(details={"run_id": str(run_id), "status": row["status"]})
            # Over, and nothing after the client's position: close it for good at once (an SSE
            # client would otherwise reconnect with the same id for ever).
            first = [self._closer(run_id)(row["status"])]
        return follower.follow(str(run_id), after_id, first, bounds)

    def _closer(self, run_id: uuid.UUID) -> Callable[[str], StreamEvent]:
        def close(status: str) -> StreamEvent:
            # The run ended without ``done`` reaching its stream (or the client had it already).
            data = {"status": status}
            return StreamEvent(self._events.append(stream_name(str(run_id)), FINAL_EVENT, data,
                                                   ttl_s=self._settings.events_ttl_s), FINAL_EVENT, data)

        return close

    @_traced
    def list_runs(self, principal: Principal, workflow_id: uuid.UUID, status: str | None,
                  page: PageRequest) -> Page[WorkflowRunSummary]:
        tenant = principal.tenant
        check_workflow_allowed(principal, workflow_id)
        workflow_id = self._workflows.workflow_id(tenant, workflow_id)
        with self._db.transaction(tenant) as conn:
            found, total = page_of(conn, "workflow_runs", _SUMMARY_COLUMNS, _LIVE,
                                   {"tenant": tenant, "workflow": workflow_id, "status": status}, page)
        return Page.of([summary_out(row) for row in found], page, total)

    # Resuming -------------------------------------------------------------------------------
    @_traced
    def resume_run(self, principal: Principal, run_id: uuid.UUID, body: ResumeRun) -> WorkflowRunOut:
        """Answer the form a paused run waits on: the answer is checked against it (422 naming
        each field), recorded as the node's outputs, and the execution resumed with the token kept
        at the pause. A run not paused at ``body.node_id`` (never paused, answered already, timed
        out, finished, paused elsewhere) answers 409 and changes nothing."""
        from shared.workflows.configs import HumanInputConfig
        from shared.workflows.definition import WorkflowDocument
        from shared.workflows.engine.runner import NodeRunResult, finished_event
        from shared.workflows.human_input import check_answer

        tenant = principal.tenant
        with self._db.transaction(tenant) as conn:
            row = run_row(conn, tenant, run_id)
            if row is None or bound_workflow(principal) not in (None, row["workflow_id"]):
                raise WorkflowRunNotFound(details={"run_id": str(run_id)})
            stored = one(conn, "SELECT document FROM workflow_runs WHERE id = %s AND tenant_id = %s", (run_id, tenant))
        details = {"run_id": str(run_id), "status": row["status"], "node_id": row["pause_node_id"]}
        if row["status"] != "paused":
            raise WorkflowRunNotPaused(f"The run is {row['status']}, not waiting for input: there is nothing to "
                                       "answer (GET the run for its status)", details=details)
        if row["pause_node_id"] != body.node_id:
            raise WorkflowRunNotPaused(f"The run waits at node {row['pause_node_id']!r}, not {body.node_id!r}: "
                                       "answer the node in the run's pause", details=details)
        node = WorkflowDocument.model_validate(stored["document"] if stored else {}).node(body.node_id)
        outputs, handle = check_answer(HumanInputConfig.model_validate(node.config), body.answer, body.action)
        paused_at: datetime = row["paused_at"] or datetime.now(UTC)
        elapsed = max(0, int((datetime.now(UTC) - paused_at).total_seconds() * 1000))
        form = dict(row["pause_form"] or {})
        result = NodeRunResult("succeeded", outputs, handle, {"form_content": form.get("content", "")}, None, 1, 0,
                               elapsed)
        ref = RunRef(str(tenant), str(run_id))
        token = self._store.resume(ref, node, result)
        if not token:
            raise WorkflowRunNotPaused("The run stopped waiting for this answer meanwhile (answered, timed out or "
                                       "ended); GET the run for its status", details=details)
        self._run_events.emit(ref, "workflow.resumed", {"node_id": node.id, "timed_out": False})
        self._run_events.emit(ref, "node.finished", finished_event(node, result))
        try:
            delivered = self._executor().succeed_task(token, {})
        except Exception as exc:
            # The execution did not hear of it: the run waits again for the same answer.
            self._store.reopen(ref, node.id)
            self._run_events.emit(ref, PAUSED_EVENT, {
                "node_id": node.id, "form": form,
                "expires_at": row["pause_expires_at"].isoformat() if row["pause_expires_at"] else None})
            if isinstance(exc, Unavailable):
                raise
            raise Unavailable("The workflow engine could not resume the run; send the answer again",
                              code="workflow_resume_failed") from exc
        if not delivered:
            # Its wait timed out just now: the timeout's step finds the answer recorded and goes on with it.
            logger.info("a resumed run's task token had timed out; its answer stands",
                        extra={"run_id": ref.run_id, "tenant_id": ref.tenant_id, "node_id": node.id})
        return self._run_out(tenant, run_id)

    # Cancelling -----------------------------------------------------------------------------
    @_traced
    def cancel_run(self, principal: Principal, run_id: uuid.UUID) -> WorkflowRunOut:
        """The run (pending, running or paused) and its running nodes end ``cancelled`` and its
        execution stops; a node still running in its own invocation finishes unrecorded (its
        result is dropped)."""
        tenant = principal.tenant
        with self._db.transaction(tenant) as conn:
            row = run_row(conn, tenant, run_id)
            if row is None or bound_workflow(principal) not in (None, row["workflow_id"]):
                raise WorkflowRunNotFound(details={"run_id": str(run_id)})
        ref = RunRef(str(tenant), str(run_id))
        error = RunError("workflow_run_cancelled", "The run was cancelled")
        if not self._store.finish(ref, "cancelled", error=error):
            raise WorkflowRunFinished(details={"run_id": str(run_id), "status": self._status(tenant, run_id)})
        if row["execution_arn"]:
            self._executor().stop(row["execution_arn"], "cancelled through the API")
        self._run_events.emit(ref, "workflow.finished", {"status": "cancelled", "error": {
            "code": error.code, "message": error.message, "node_id": None}})
        self._run_events.emit(ref, FINAL_EVENT, {"status": "cancelled"})
        return self._run_out(tenant, run_id)

    def _status(self, tenant_id: uuid.UUID, run_id: uuid.UUID) -> str | None:
        with self._db.transaction(tenant_id) as conn:
            row = run_row(conn, tenant_id, run_id)
        return row["status"] if row else None

    # Reconciling ----------------------------------------------------------------------------
    @_traced
    def reconcile(self, limit: int = 100) -> int:
        """End runs whose execution is over (or gone) without the run being finished: a task
        that died past its retries and catch, a stopped execution. Returns how many it ended."""
        with self._db.transaction(None) as conn:
            stale = rows(conn, "SELECT * FROM workflow_runs_stale(make_interval(secs => %s), %s)",
                         (self._settings.stale_after_s, limit))
        ended = 0
        for item in stale:
            status = self._executor().status(item["execution_arn"]) if item["execution_arn"] else None
            if status == "RUNNING":
                continue
            ref = RunRef(str(item["tenant_id"]), str(item["run_id"]))
            error = RunError("workflow_run_lost", f"The run's execution ended ({status or 'not found'}) without "
                                                  "recording a result; run the workflow again")
            if self._store.finish(ref, "failed", error=error):
                ended += 1
                self._run_events.emit(ref, "workflow.finished", {"status": "failed", "error": {
                    "code": error.code, "message": error.message, "node_id": None}})
                self._run_events.emit(ref, FINAL_EVENT, {"status": "failed"})
                logger.warning("reconciled a workflow run whose execution ended",
                               extra={"run_id": ref.run_id, "tenant_id": ref.tenant_id, "execution_status": status})
        return ended

def is_final(run: WorkflowRunSummary) -> bool:
    return run.status in FINAL_STATUSES
