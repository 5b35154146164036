"""The workflow interpreter's loop protocol (docs/adr/0029-workflow-interpreter-infrastructure.md).

One state machine runs every workflow as data. Its state is a ``LoopState``: the run's ids and
a cursor, nothing else. Each step loads the run, runs what is ready and cheap (fused, each node
still recorded) and answers what comes next:

- ``step``: loop back (the step's fusion limit was reached);
- ``branches``: run ``nodes`` in parallel, one invocation each (the Map), then step again;
- ``wait``: pause on ``node_id`` for human input (``.waitForTaskToken``), then step again;
- ``continue``: carry on in a fresh execution before the history limit;
- ``done`` / ``failed``: the run is over (and recorded so).

The cursor counts steps (so a redelivered step is recognisable) and estimates the history
events the execution has used; the step answers ``continue`` instead of work that would
pass the budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.observability import tracer
from shared.workflows.ports import (
    Executions,
    ExecutorRegistry,
    Node,
    NodeContext,
    Run,
    RunError,
    RunRef,
    RunStore,
)

Next = Literal["step", "branches", "wait", "continue", "done", "failed"]

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


class Cursor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Executions this run has had before the current one (carry-on-as-new).
    generation: int = Field(default=0, ge=0)
    # Steps taken in the run.
    step: int = Field(default=0, ge=0)
    # History events the current execution has used (estimate).
    events: int = Field(default=0, ge=0)


class LoopState(BaseModel):
    """The state passed between the interpreter's states: identifiers only (docs/architecture.md §6.3)."""

    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(min_length=1, max_length=64)
    tenant_id: str = Field(min_length=1, max_length=64)
    cursor: Cursor = Field(default_factory=Cursor)
    next: Next = "step"
    # Node ids: the branches to run (``branches``).
    nodes: list[str] = Field(default_factory=list)
    # The node waiting for input (``wait``).
    node_id: str | None = None

    @property
    def run(self) -> RunRef:
        return RunRef(self.tenant_id, self.run_id)


class BranchTask(LoopState):
    node_id: str = Field(min_length=1)


class InputTask(LoopState):
    node_id: str = Field(min_length=1)
    task_token: str = Field(min_length=1)


class FailureTask(LoopState):
    """What a Catch hands on: the error Step Functions caught (``Error``/``Cause``)."""

    error: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    # Inline nodes run in one step invocation before it loops back.
    max_fused: int = 20
    # History events an execution may use before the run carries on in a new one.
    event_budget: int = HISTORY_LIMIT - HISTORY_RESERVE


class RunLost(RuntimeError):
    """A dispatched node came back from its branch without a result (its invocation gave up)."""


# One X-Ray subsegment per task; results are node outputs, never recorded.
_traced = tracer.capture_method(capture_response=False)


class Interpreter:
    def __init__(self, store: RunStore, executors: ExecutorRegistry, executions: Executions | None = None,
                 limits: Limits | None = None) -> None:
        self._store = store
        self._executors = executors
        self._executions = executions
        self._limits = limits or Limits()

    # -- the step ------------------------------------------------------------------------
    @_traced
    def step(self, state: LoopState) -> LoopState:
        ref = state.run
        cursor = state.cursor.model_copy(update={"step": state.cursor.step + 1,
                                                 "events": state.cursor.events + STEP_EVENTS})
        run = self._store.load(ref)
        if run.status != "running":
            return self._answer(state, cursor, "done" if run.status == "succeeded" else "failed")
        lost = [node.id for node in run.graph.nodes if run.state(node.id).status == "dispatched"]
        if lost:
            # The Map is over: a dispatched node without a result gave up in its branch.
            for node_id in lost:
                self._store.set_node(ref, node_id, "failed")
            return self._fail(state, cursor, RunError("node_gave_up", f"node {lost[0]} did not finish"))
        fused = 0
        while True:
            failed = [node.id for node in run.graph.nodes if run.state(node.id).status == "failed"]
            if failed:
                return self._fail(state, cursor, RunError("node_failed", f"node {failed[0]} failed"))
            ready = self.ready(run)
            if not ready:
                return self._settle(state, cursor, run)
            modes = {node.id: self._executors.executor(node.type).mode for node in ready}
            if len(ready) == 1 and modes[ready[0].id] == "inline":
                if fused >= self._limits.max_fused:
                    return self._plan(state, cursor, "step", [], STEP_EVENTS)
                self._run_node(ref, run, ready[0])
                fused += 1
                run = self._store.load(ref)
                continue
            waiting = [node for node in ready if modes[node.id] == "input"]
            if waiting:
                # One pause at a time; the other ready nodes run after it.
                return self._plan(state, cursor, "wait", [waiting[0].id], WAIT_EVENTS)
            return self._plan(state, cursor, "branches", [node.id for node in ready],
                              MAP_EVENTS + BRANCH_EVENTS * len(ready))

    @staticmethod
    def ready(run: Run) -> list[Node]:
        """Pending nodes whose sources have all succeeded, in graph order."""
        return [node for node in run.graph.nodes
                if run.state(node.id).status == "pending"
                and all(run.state(source).status == "succeeded" for source in run.graph.sources(node.id))]

    def _plan(self, state: LoopState, cursor: Cursor, next_: Next, nodes: list[str], cost: int) -> LoopState:
        """Answer ``next_`` (marking its nodes), or ``continue`` if it would pass the budget."""
        if cursor.events + cost + STEP_EVENTS > self._limits.event_budget:
            return self._answer(state, cursor, "continue")
        ref = state.run
        if next_ == "branches":
            for node_id in nodes:
                self._store.set_node(ref, node_id, "dispatched")
        elif next_ == "wait":
            self._store.set_node(ref, nodes[0], "waiting")
        cursor = cursor.model_copy(update={"events": cursor.events + cost})
        return self._answer(state, cursor, next_, nodes)

    def _settle(self, state: LoopState, cursor: Cursor, run: Run) -> LoopState:
        unfinished = [node.id for node in run.graph.nodes if run.state(node.id).status != "succeeded"]
        if unfinished:
            # Nothing ready yet something unfinished: a wait answered without its node's result.
            return self._fail(state, cursor, RunError("node_unfinished", f"node {unfinished[0]} has no result"))
        self._store.finish(state.run, "succeeded")
        return self._answer(state, cursor, "done")

    def _fail(self, state: LoopState, cursor: Cursor, error: RunError) -> LoopState:
        self._store.finish(state.run, "failed", error)
        return self._answer(state, cursor, "failed")

    @staticmethod
    def _answer(state: LoopState, cursor: Cursor, next_: Next, nodes: list[str] | None = None) -> LoopState:
        nodes = nodes or []
        return LoopState(run_id=state.run_id, tenant_id=state.tenant_id, cursor=cursor, next=next_,
                         nodes=nodes if next_ == "branches" else [],
                         node_id=nodes[0] if next_ == "wait" else None)

    def _run_node(self, ref: RunRef, run: Run, node: Node) -> None:
        inputs = {source: dict(run.state(source).output or {}) for source in run.graph.sources(node.id)}
        output = self._executors.executor(node.type).execute(NodeContext(ref, node, inputs))
        self._store.set_node(ref, node.id, "succeeded", dict(output))

    # -- the other tasks -----------------------------------------------------------------
    @_traced
    def run_branch(self, task: BranchTask) -> None:
        """One Map item: run a dispatched node (again only if it has no result yet)."""
        ref = task.run
        run = self._store.load(ref)
        if run.state(task.node_id).status == "succeeded":
            return
        self._run_node(ref, run, run.graph.node(task.node_id))

    @_traced
    def await_input(self, task: InputTask) -> None:
        """Keep the token that resumes the run; whoever answers the input sends it back."""
        self._store.save_task_token(task.run, task.node_id, task.task_token)

    @_traced
    def continue_as_new(self, state: LoopState) -> str:
        """Start the run's next execution (same run, fresh history); its ARN. The execution name
        is the run id and generation, so a redelivered task starts nothing twice."""
        if self._executions is None:
            raise RuntimeError("continuing a run needs the interpreter's executions")
        cursor = Cursor(generation=state.cursor.generation + 1, step=state.cursor.step, events=0)
        fresh = LoopState(run_id=state.run_id, tenant_id=state.tenant_id, cursor=cursor)
        return self._executions.start(execution_name(state.run_id, cursor.generation),
                                      fresh.model_dump(mode="json", include={"run_id", "tenant_id", "cursor"}))

    @_traced
    def fail(self, task: FailureTask) -> None:
        """A task gave up (retries exhausted, or it raised): the run fails with its error."""
        code = str(task.error.get("Error") or "workflow_step_failed")
        message = str(task.error.get("Cause") or "a workflow task failed")
        self._store.finish(task.run, "failed", RunError(code, message[:1000]))


def execution_name(run_id: str, generation: int) -> str:
    """Execution names are unique per machine for 90 days: the run id plus its generation."""
    return f"{run_id}-{generation}"


def start_state(run: RunRef) -> Mapping[str, Any]:
    """The input of a run's first execution."""
    return LoopState(run_id=run.run_id, tenant_id=run.tenant_id).model_dump(
        mode="json", include={"run_id", "tenant_id", "cursor"})
