"""The workflow interpreter's loop protocol (docs/adr/0029-workflow-interpreter-infrastructure.md,
docs/adr/0033-workflow-runs.md).

One state machine runs every workflow as data. Its state is a ``LoopState``: the run's ids and
a cursor, nothing else. Each step loads the run, asks the engine's :func:`plan` what is ready,
runs the cheap ready nodes itself (fused, each still recorded) and answers what comes next:

- ``step``: loop back (the step's fusion limit was reached);
- ``branches``: run ``nodes`` in parallel, one invocation each (the Map), then step again;
- ``wait``: pause on ``node_id`` for human input (``.waitForTaskToken``, timing out after
  ``timeout_s``), then step again — told ``timeout`` when the wait timed out, so it settles the
  node first (docs/adr/0036-human-input-and-sub-workflows.md);
- ``items``: run iteration ``node_id``'s long list through a Distributed Map reading ``reader``
  (docs/adr/0038-long-iterations-distributed-map.md), then step again, which joins it first;
- ``continue``: carry on in a fresh execution before the history limit;
- ``done`` / ``failed``: the run is over (and recorded so).

The cursor counts steps (so a redelivered step is recognisable) and estimates the history
events the execution has used; the step answers ``continue`` instead of work that would pass
the budget. Every answer adds the state transitions it causes to the run's count (what Step
Functions bills), so the run record reports them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.observability import tracer
from shared.workflows.ports import (
    ExecutionMode,
    Executions,
    IterationFiles,
    LoadedRun,
    NodeRecord,
    NodeRunnerPort,
    PendingInput,
    RunError,
    RunEvents,
    RunRef,
    RunStore,
)

if TYPE_CHECKING:
    from shared.workflows.configs import IterationConfig
    from shared.workflows.definition import Node
    from shared.workflows.engine.runner import NodeRunResult
    from shared.workflows.variables import VariablePool

Next = Literal["step", "branches", "wait", "items", "continue", "done", "failed", "timeout"]

# Standard executions fail at 25,000 history events.
HISTORY_LIMIT = 25_000
# Kept free for what follows the last planned work: the carry-on or the failure path.
HISTORY_RESERVE = 1_000
# History events per transition (upper estimates): a Lambda task state is 5 (entered,
# scheduled, started, succeeded, exited) and the Choice after it 2.
STEP_EVENTS = 7
MAP_EVENTS = 4  # the Map state's own entered/started/succeeded/exited
BRANCH_EVENTS = 8  # per item: iteration started/succeeded + its task state
WAIT_EVENTS = 7  # the task-token task (with its submitted event) and the Choice
# A Distributed Map in this execution's history: entered, started, map run started and
# succeeded (or failed, then caught), succeeded, exited — whatever the number of items: each
# child execution has a history of its own (docs/adr/0038).
MAP_RUN_EVENTS = 8

# State transitions (states entered) each answer costs: the Step task and the Choice after it,
# plus the states the answer leads to before the next step.
# A Map adds itself and one state per item.
# ``items`` adds the transitions of each child execution of the Distributed Map (ITEM_TRANSITIONS).
_TRANSITIONS: dict[str, int] = {"step": 2, "branches": 3, "wait": 3, "items": 3, "continue": 4, "done": 3,
                                "failed": 3}
# A child execution of a long iteration's Map: its item task, the Choice after it, the end.
ITEM_TRANSITIONS = 3
# A pause without a timeout waits as long as a Standard execution may last (one year).
UNBOUNDED_WAIT_S = 365 * 24 * 3600

# The engine's event names → the run's event stream.
_EVENT_NAMES = {"node_started": "node.started", "node_finished": "node.finished", "text_chunk": "node.delta"}


class Cursor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Executions this run has had before the current one (carry-on-as-new).
    generation: int = Field(default=0, ge=0)
    # Steps taken in the run.
    step: int = Field(default=0, ge=0)
    # History events the current execution has used (estimate).
    events: int = Field(default=0, ge=0)


class ItemReader(BaseModel):
    """Where a long iteration's Distributed Map reads its batches (a JSON array in S3), and how
    many child executions run at once: 1 keeps item order, else the node's ``parallel_nums``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    concurrency: int = Field(ge=1, le=10)


class LoopState(BaseModel):
    """The state passed between the interpreter's states: identifiers only (docs/architecture.md §6.3)."""

    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(min_length=1, max_length=64)
    tenant_id: str = Field(min_length=1, max_length=64)
    cursor: Cursor = Field(default_factory=Cursor)
    next: Next = "step"
    # Node ids: the branches to run (``branches``).
    nodes: list[str] = Field(default_factory=list)
    # The node waiting for input (``wait``), or the iteration whose items run (``items``).
    node_id: str | None = None
    # The item reader of a long iteration's Map (``items``).
    reader: ItemReader | None = None
    # How long the pause at ``node_id`` waits (``wait``): the task's TimeoutSecondsPath.
    timeout_s: int | None = Field(default=None, ge=1)

    @property
    def run(self) -> RunRef:
        return RunRef(self.tenant_id, self.run_id)


class BranchTask(LoopState):
    node_id: str = Field(min_length=1)


class InputTask(LoopState):
    node_id: str = Field(min_length=1)
    task_token: str = Field(min_length=1)


class ItemBatch(BaseModel):
    """One child execution's share of a long iteration: items ``start`` to ``end - 1``."""

    model_config = ConfigDict(extra="ignore")

    batch: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=1)


class ItemsTask(LoopState):
    node_id: str = Field(min_length=1)
    batch: ItemBatch


class FailureTask(LoopState):
    """What a Catch hands on: the error Step Functions caught (``Error``/``Cause``)."""

    error: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    # Inline nodes run in one step invocation before it loops back.
    max_fused: int = 50
    # History events an execution may use before the run carries on in a new one.
    event_budget: int = HISTORY_LIMIT - HISTORY_RESERVE
    # An iteration over more items runs through the Distributed Map (``items``), up to the
    # engine's MAX_ITERATION_ITEMS; up to this many, in its node's own invocation.
    inline_items: int = 200
    # Items per child execution when every child of the iteration is a cheap (inline) node;
    # one item per child execution otherwise (a slow item has the task's whole time).
    batch_items: int = 50


def mode_of(node_type: str) -> ExecutionMode:
    from shared.workflows.engine.graph import MODES

    return MODES.get(node_type, "branch")


# One X-Ray subsegment per task; results are node outputs, never recorded.
_traced = tracer.capture_method(capture_response=False)


class Interpreter:
    def __init__(self, store: RunStore, runner: NodeRunnerPort, events: RunEvents,
                 executions: Executions | None = None, limits: Limits | None = None,
                 iterations: IterationFiles | None = None) -> None:
        self._store = store
        self._runner = runner
        self._events = events
        self._executions = executions
        self._limits = limits or Limits()
        self._iterations = iterations

    # -- the step ------------------------------------------------------------------------
    @_traced
    def step(self, state: LoopState) -> LoopState:
        from shared.workflows.engine.graph import plan

        ref = state.run
        cursor = state.cursor.model_copy(update={"step": state.cursor.step + 1,
                                                 "events": state.cursor.events + STEP_EVENTS})
        run = self._store.load(ref)
        if run.finished:
            # Cancelled (or finished by a redelivered step): nothing more to do.
            return self._answer(state, cursor, "done" if run.status != "failed" else "failed")
        if run.status == "pending" and self._store.begin(ref):
            self._emit(ref, "workflow.started", {"run_id": ref.run_id, "workflow_id": run.context.workflow_id,
                                                 "version": run.context.version})
        if state.next == "timeout" and state.node_id:
            # The pause timed out: its node answers its defaults, or fails, before anything else.
            timed_out = self._time_out(ref, run, run.document.node(state.node_id))
            if timed_out is not None:
                run = replace(run, status="running", nodes={**run.nodes, state.node_id: NodeRecord(
                    state.node_id, timed_out.status, timed_out.handle, timed_out.outputs,
                    timed_out.error.to_dict() if timed_out.error else None)})
        if state.next == "items" and state.node_id:
            # The Map of a long iteration is over: join its items before anything else.
            joined = self._join_items(ref, run, run.document.node(state.node_id))
            if joined is not None:
                run = replace(run, nodes={**run.nodes, state.node_id: NodeRecord(
                    state.node_id, joined.status, joined.handle, joined.outputs,
                    joined.error.to_dict() if joined.error else None, joined.answer)},
                    conversation={**run.conversation, **joined.assigned})
        lost = [node_id for node_id, record in run.nodes.items() if record.status == "running"]
        if lost:
            # The Map is over: a dispatched node without a result gave up in its branch.
            return self._fail(state, cursor, run, RunError(
                "node_gave_up", f"Node {lost[0]} did not finish: its invocation failed after its retries; "
                                "run the workflow again", node_id=lost[0]))
        failed = [record for record in run.nodes.values() if record.status == "failed"]
        if failed:
            # A branch's node failed (its error strategy did not handle it): the run fails with it.
            record = failed[0]
            error = dict(record.error or {})
            node = run.document.node(record.node_id)
            return self._fail(state, cursor, run, RunError(
                str(error.get("code") or "node_failed"),
                f"Node {node.id} ({node.type}) failed: {error.get('message') or 'no reason was recorded'}",
                node_id=node.id, details=dict(error.get("details") or {})))
        fused = 0
        while True:
            planned = plan(run.document, run.outcomes())
            if planned.skipped:
                self._store.skip(ref, [run.document.node(node_id) for node_id in planned.skipped])
            if planned.finished:
                return self._succeed(state, cursor, run)
            ready = [run.document.node(node_id) for node_id in planned.ready]
            inline = [node for node in ready if mode_of(node.type) == "inline"]
            if inline:
                if fused >= self._limits.max_fused:
                    return self._plan(state, cursor, "step", [], 0)
                node = inline[0]
                result = self._run_node(ref, run, node)
                fused += 1
                if result is None:  # cancelled meanwhile
                    return self._answer(state, cursor, "done")
                if result.status == "failed":
                    return self._fail_node(state, cursor, run, node, result)
                # The store said the run is live (record): carry the result on without reloading.
                run = replace(run, nodes={**run.nodes, node.id: NodeRecord(
                    node.id, result.status, result.handle, result.outputs,
                    result.error.to_dict() if result.error else None, result.answer)},
                    conversation={**run.conversation, **result.assigned})
                continue
            waiting = [node for node in ready if mode_of(node.type) == "input"]
            if waiting:
                # One pause at a time; the other ready nodes run after it.
                return self._pause(state, cursor, run, waiting[0])
            # A chatflow's iterations stay in their node's invocation: what their children give the
            # chat and the conversation variables they change are the node's to record.
            long = self._long_iteration(ready, run.pool()) if run.document.mode != "chatflow" else None
            if long is not None:
                # One long iteration at a time, as a pause; the other ready nodes run after it.
                return self._items(state, cursor, run, *long)
            return self._plan(state, cursor, "branches", ready, MAP_EVENTS + BRANCH_EVENTS * len(ready))

    def _plan(self, state: LoopState, cursor: Cursor, next_: Next, nodes: list[Node], cost: int) -> LoopState:
        """Answer ``next_`` (marking its nodes), or ``continue`` if it would pass the budget."""
        if cursor.events + cost + STEP_EVENTS > self._limits.event_budget:
            return self._answer(state, cursor, "continue")
        ref = state.run
        if next_ == "branches":
            self._store.dispatch(ref, nodes)
        cursor = cursor.model_copy(update={"events": cursor.events + cost})
        return self._answer(state, cursor, next_, [node.id for node in nodes])

    def _succeed(self, state: LoopState, cursor: Cursor, run: LoadedRun) -> LoopState:
        from shared.workflows.engine.runner import run_outputs

        outputs = run_outputs(run.document, run.outcomes(), run.pool(), run.answers())
        if self._store.finish(state.run, "succeeded", outputs):
            self._emit(state.run, "workflow.finished", _finished(outputs))
            self._emit(state.run, "done", {"status": "succeeded"})
        return self._answer(state, cursor, "done")

    def _fail_node(self, state: LoopState, cursor: Cursor, run: LoadedRun, node: Node,
                   result: NodeRunResult) -> LoopState:
        error = result.error
        code = error.code if error else "node_failed"
        message = error.message if error else "the node failed"
        return self._fail(state, cursor, run, RunError(code, f"Node {node.id} ({node.type}) failed: {message}",
                                                       node_id=node.id,
                                                       details=dict(error.details) if error else {}))

    def _fail(self, state: LoopState, cursor: Cursor, run: LoadedRun, error: RunError) -> LoopState:
        if self._store.finish(state.run, "failed", error=error):
            self._emit(state.run, "workflow.finished", {"status": "failed", "error": _error(error)})
            self._emit(state.run, "error", _error(error))
            self._emit(state.run, "done", {"status": "failed"})
        return self._answer(state, cursor, "failed")

    def _answer(self, state: LoopState, cursor: Cursor, next_: Next, nodes: list[str] | None = None) -> LoopState:
        nodes = nodes or []
        self._store.count(state.run, _TRANSITIONS[next_] + (len(nodes) if next_ == "branches" else 0))
        return LoopState(run_id=state.run_id, tenant_id=state.tenant_id, cursor=cursor, next=next_,
                         nodes=nodes if next_ == "branches" else [],
                         node_id=nodes[0] if next_ == "wait" else None)

    def _run_node(self, ref: RunRef, run: LoadedRun, node: Node) -> NodeRunResult | None:
        """Run one node against the run's variables and record it; None when the run ended
        (cancelled) while it ran."""
        result = self._runner.run(run.context, run.document, node.id, run.pool(), self._emitter(ref))
        return result if self._store.record(ref, node, result) else None

    def _emit(self, ref: RunRef, event_type: str, data: dict[str, Any]) -> None:
        self._events.emit(ref, event_type, data)

    def _emitter(self, ref: RunRef) -> Any:
        def emit(kind: str, data: dict[str, Any]) -> None:
            self._emit(ref, _EVENT_NAMES.get(kind, kind.replace("_", ".")), data)

        return emit

    # -- human input (docs/adr/0036-human-input-and-sub-workflows.md) -------------------------
    def _pause(self, state: LoopState, cursor: Cursor, run: LoadedRun, node: Node) -> LoopState:
        """Record the node waiting with its form (rendered now, from the run's variables) and
        answer ``wait``; the await task keeps the token and marks the run paused."""
        from datetime import UTC, datetime, timedelta

        from pydantic import ValidationError

        from shared.workflows.configs import HumanInputConfig
        from shared.workflows.engine.runner import NodeError, NodeRunResult
        from shared.workflows.human_input import form_view

        if cursor.events + WAIT_EVENTS + STEP_EVENTS > self._limits.event_budget:
            return self._answer(state, cursor, "continue")
        ref = state.run
        try:
            config = HumanInputConfig.model_validate(node.config)
        except ValidationError as exc:
            result = NodeRunResult("failed", {}, "source", {}, NodeError(
                "node_config_invalid", f"The node's configuration is invalid: {exc.errors()[0].get('msg', '')}; fix "
                                       "it in the workflow and publish again"), 1, 0, 0)
            self._store.record(ref, node, result)
            return self._fail_node(state, cursor, run, node, result)
        expires = datetime.now(UTC) + timedelta(seconds=config.timeout_s) if config.timeout_s else None
        self._store.pause(ref, node, PendingInput(node.id, form_view(config, run.pool().render(config.form_content)),
                                                  expires))
        self._emit(ref, "node.started", {"node_id": node.id, "node_type": node.type, "title": node.title})
        self._store.count(ref, _TRANSITIONS["wait"])
        cursor = cursor.model_copy(update={"events": cursor.events + WAIT_EVENTS})
        return LoopState(run_id=state.run_id, tenant_id=state.tenant_id, cursor=cursor, next="wait",
                         node_id=node.id, timeout_s=config.timeout_s or UNBOUNDED_WAIT_S)

    def _time_out(self, ref: RunRef, run: LoadedRun, node: Node) -> NodeRunResult | None:
        """Settle a pause that timed out: its defaults (``on_timeout: default``) or its failure
        (``human_input_timeout``, then the node's error strategy). None when the pause was over
        already (answered just before the timeout)."""
        from shared.workflows.configs import HumanInputConfig
        from shared.workflows.engine.nodes.base import NodeOutput
        from shared.workflows.engine.runner import NodeError, finished_event, settled
        from shared.workflows.human_input import default_answer

        record = run.nodes.get(node.id)
        if run.status != "paused" or record is None or record.status != "running":
            return None
        config = HumanInputConfig.model_validate(node.config)
        elapsed = (config.timeout_s or UNBOUNDED_WAIT_S) * 1000
        outcome: NodeOutput | NodeError
        if config.on_timeout == "default":
            outputs, handle = default_answer(config)
            outcome = NodeOutput(outputs, handle)
        else:
            outcome = NodeError("human_input_timeout", f"No answer came within {config.timeout_s} s; answer "
                                                       "sooner, or give the form defaults (on_timeout: default)",
                                details={"timeout_s": config.timeout_s})
        result = settled(node, {}, outcome, attempts=1, tokens=0, elapsed_ms=elapsed)
        if self._store.resume(ref, node, result) is None:
            return None
        self._emit(ref, "workflow.resumed", {"node_id": node.id, "timed_out": True})
        self._emit(ref, "node.finished", finished_event(node, result))
        return result

    # -- long iterations (docs/adr/0038-long-iterations-distributed-map.md) -------------------
    def _files(self) -> IterationFiles:
        if self._iterations is None:
            raise RuntimeError("a long iteration needs the interpreter's iteration files (the payloads bucket)")
        return self._iterations

    def _long_iteration(self, ready: list[Node], pool: VariablePool) -> tuple[Node, IterationConfig, list[Any]] | None:
        """The first ready iteration whose list is over the inline bound (and within the
        engine's limit: a longer one runs as a branch, whose executor refuses it)."""
        from pydantic import ValidationError

        from shared.workflows.configs import MAX_ITERATION_ITEMS, IterationConfig

        for node in ready:
            if node.type != "iteration":
                continue
            try:
                config = IterationConfig.model_validate(node.config)
            except ValidationError:
                continue  # its branch fails it, as any node with an invalid configuration
            items = pool.get_or_none(config.iterator_selector)
            if isinstance(items, list) and self._limits.inline_items < len(items) <= MAX_ITERATION_ITEMS:
                return node, config, items
        return None

    def _items(self, state: LoopState, cursor: Cursor, run: LoadedRun, node: Node, config: IterationConfig,
               items: list[Any]) -> LoopState:
        """Write the iteration's items and batches, mark it running, answer ``items``."""
        if cursor.events + MAP_RUN_EVENTS + STEP_EVENTS > self._limits.event_budget:
            return self._answer(state, cursor, "continue")
        ref = state.run
        cheap = all(mode_of(child.type) == "inline" for child in run.document.children(node.id))
        written = self._files().write(ref, node.id, items, self._limits.batch_items if cheap else 1)
        self._store.dispatch(ref, [node])
        self._emit(ref, "node.started", {"node_id": node.id, "node_type": node.type, "title": node.title})
        self._store.count(ref, _TRANSITIONS["items"] + ITEM_TRANSITIONS * written.batches)
        cursor = cursor.model_copy(update={"events": cursor.events + MAP_RUN_EVENTS})
        concurrency = config.parallel_nums if config.is_parallel else 1
        return LoopState(run_id=state.run_id, tenant_id=state.tenant_id, cursor=cursor, next="items",
                         node_id=node.id, reader=ItemReader(bucket=written.bucket, key=written.key,
                                                            concurrency=concurrency))

    def _join_items(self, ref: RunRef, run: LoadedRun, node: Node) -> NodeRunResult | None:
        """Settle a long iteration from its batches' results, as its executor would have in
        one invocation; None when there is nothing to join (a redelivered step) or the run
        ended meanwhile."""
        from shared.workflows.configs import IterationConfig
        from shared.workflows.engine.errors import NodeFailure
        from shared.workflows.engine.nodes.base import selector_key
        from shared.workflows.engine.nodes.iteration import ItemResult, assemble
        from shared.workflows.engine.runner import ChildRun, NodeError, NodeRunResult, finished_event, settled

        record = run.nodes.get(node.id)
        if record is None or record.status != "running":
            return None
        config = IterationConfig.model_validate(node.config)
        files = self._files()
        batches = files.batches(ref, node.id)
        results: list[ItemResult] = []
        children: list[ChildRun] = []
        tokens, missing = 0, []
        for (start, end), result in zip(batches.batches, files.results(ref, node.id, len(batches.batches)),
                                        strict=True):
            if result is None:
                missing.append((start, end))
                continue
            tokens += int(result.get("tokens") or 0)
            children.extend(ChildRun.from_dict(child) for child in result.get("children") or [])
            for item in result.get("items") or []:
                failed = item.get("failed")
                results.append(ItemResult(int(item["index"]), bool(item["succeeded"]), item.get("output"),
                                          ChildRun.from_dict(failed) if failed else None))
        inputs = {selector_key(config.iterator_selector): run.pool().get_or_none(config.iterator_selector)}
        elapsed = max(0, int(time.time() * 1000) - batches.written_at_ms)
        children.sort(key=lambda child: child.index)
        terminated = config.error_handle_mode == "terminated" and any(not item.succeeded for item in results)
        if missing and not terminated:
            # A batch's task gave up (after its retries) without a result: as a branch that gave up.
            start, end = missing[0]
            joined = NodeRunResult("failed", {}, "source", inputs, NodeError(
                "node_gave_up", f"Items {start} to {end - 1} of iteration {node.id} did not finish: their invocation "
                                "failed after its retries; run the workflow again",
                details={"batches_missing": len(missing)}), 1, tokens, elapsed, tuple(children))
        else:
            try:
                outcome: Any = assemble(config, results)
            except NodeFailure as exc:
                outcome = NodeError(exc.code, exc.message, dict(exc.details))
            joined = settled(node, inputs, outcome, attempts=1, tokens=tokens, elapsed_ms=elapsed, children=children)
        if not self._store.record(ref, node, joined):
            return None
        self._emit(ref, "node.finished", finished_event(node, joined))
        return joined

    # -- the other tasks -----------------------------------------------------------------
    @_traced
    def run_branch(self, task: BranchTask) -> None:
        """One Map item: run a dispatched node (again only if it has no result yet)."""
        ref = task.run
        run = self._store.load(ref)
        record = run.nodes.get(task.node_id)
        if run.finished or (record is not None and record.status != "running"):
            return
        self._run_node(ref, run, run.document.node(task.node_id))

    @_traced
    def run_items(self, task: ItemsTask) -> bool:
        """One child execution of a long iteration's Map: run its batch of items (unless a
        redelivery finds its result written) and write what they answered. True: the Map
        should stop (an item failed under ``terminated``, or the run is over), so the child
        ends failed and Step Functions stops the Map run (its tolerated failures are 0)."""
        from shared.workflows.configs import IterationConfig

        ref, batch = task.run, task.batch
        run = self._store.load(ref)
        record = run.nodes.get(task.node_id)
        if run.finished:
            return True
        if record is None or record.status != "running":
            return False  # joined already (a redelivered child)
        files = self._files()
        config = IterationConfig.model_validate(run.document.node(task.node_id).config)
        terminate = config.error_handle_mode == "terminated"
        written = files.result(ref, task.node_id, batch.batch)
        if written is None:
            if terminate and files.stopped(ref, task.node_id):
                return True
            items = files.items(ref, task.node_id, batch.start, batch.end)
            ran = self._runner.run_items(run.context, run.document, task.node_id, run.pool(),
                                         list(zip(range(batch.start, batch.end), items, strict=True)),
                                         self._emitter(ref))
            written = {"batch": batch.batch, "tokens": ran.tokens,
                       "items": [{"index": item.index, "succeeded": item.succeeded, "output": item.output,
                                  "failed": item.failed.to_dict() if item.failed else None} for item in ran.results],
                       "children": [child.to_dict() for child in ran.children]}
            files.put_result(ref, task.node_id, batch.batch, written)
        if terminate and any(not item["succeeded"] for item in written["items"]):
            files.stop(ref, task.node_id)
            return True
        return False

    @_traced
    def await_input(self, task: InputTask) -> None:
        """Keep the token that resumes the run and mark it paused; whoever answers the input
        sends the token back (the runs API's resume), or the task times out."""
        pending = self._store.save_task_token(task.run, task.node_id, task.task_token)
        if pending is not None:
            self._emit(task.run, "workflow.paused", {
                "node_id": pending.node_id, "form": dict(pending.form),
                "expires_at": pending.expires_at.isoformat() if pending.expires_at else None})

    @_traced
    def continue_as_new(self, state: LoopState) -> str:
        if self._executions is None:
            raise RuntimeError("continuing a run needs the interpreter's executions")
        return continue_as_new(self._executions, state)

    @_traced
    def fail(self, task: FailureTask) -> None:
        """A task gave up (retries exhausted, or it raised): the run fails with its error."""
        code = str(task.error.get("Error") or "workflow_step_failed")
        cause = str(task.error.get("Cause") or "a workflow task failed")
        error = RunError("workflow_task_failed", f"The run's {code} could not be recovered: {cause[:800]}; "
                                                 "run the workflow again")
        if self._store.finish(task.run, "failed", error=error):
            self._emit(task.run, "workflow.finished", {"status": "failed", "error": _error(error)})
            self._emit(task.run, "error", _error(error))
            self._emit(task.run, "done", {"status": "failed"})


class TaskInterrupted(RuntimeError):
    """What the platform runs on failed for a moment (the database, the cache, an AWS endpoint):
    the task is retried by the state machine (its Retry names this error), the node not failed."""


@contextmanager
def interruptible() -> Iterator[None]:
    """Turn the engine's transient infrastructure errors into :class:`TaskInterrupted`. Only the
    error's type goes into the message: Step Functions records it in the execution history."""
    from shared.workflows.engine.runner import infrastructure_errors

    try:
        yield
    except infrastructure_errors() as exc:
        raise TaskInterrupted(f"{type(exc).__name__} while running the task; it is retried") from exc


def _error(error: RunError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "node_id": error.node_id}


def _finished(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """A succeeded run's ``workflow.finished``: its outputs cut to a preview (the run has them whole)."""
    from shared.workflows.run_event_data import summarize_outputs

    previews, truncated = summarize_outputs(dict(outputs))
    return {"status": "succeeded", "outputs": previews, "outputs_truncated": truncated}


def continue_as_new(executions: Executions, state: LoopState) -> str:
    """Start the run's next execution (same run, fresh history); its ARN. The execution name is
    the run id and generation, so a redelivered task starts nothing twice."""
    cursor = Cursor(generation=state.cursor.generation + 1, step=state.cursor.step, events=0)
    fresh = LoopState(run_id=state.run_id, tenant_id=state.tenant_id, cursor=cursor)
    return executions.start(execution_name(state.run_id, cursor.generation),
                            fresh.model_dump(mode="json", include={"run_id", "tenant_id", "cursor"}))


def execution_name(run_id: str, generation: int) -> str:
    """Execution names are unique per machine for 90 days: the run id plus its generation."""
    return f"{run_id}-{generation}"


def start_state(run: RunRef) -> Mapping[str, Any]:
    """The input of a run's first execution."""
    return LoopState(run_id=run.run_id, tenant_id=run.tenant_id).model_dump(
        mode="json", include={"run_id", "tenant_id", "cursor"})
