"""What the workflow interpreter works over: a run as loaded from its store (the document it
runs, its context and the node runs so far), the store that keeps it, the node runner that runs
one node (the engine's :class:`~shared.workflows.engine.runner.NodeRunner`), the run's event
stream, and the executions of the interpreter's state machine."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from shared.workflows.definition import Node, WorkflowDocument
    from shared.workflows.engine.graph import NodeOutcome
    from shared.workflows.engine.runner import Emit, ItemsRun, NodeRunResult, RunContext
    from shared.workflows.iterations import Batches, WrittenItems
    from shared.workflows.variables import VariablePool

# paused: a human_input node waits for a person's answer (the execution waits on a task token).
RunStatus = Literal["pending", "running", "paused", "succeeded", "failed", "cancelled"]
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
NodeRunStatus = Literal["running", "succeeded", "failed", "skipped", "cancelled"]
# inline: cheap, run inside the step invocation (consecutive ones fused); branch: its own
# invocation, in parallel with the other ready nodes (the Map); input: waits for a person
# (.waitForTaskToken).
ExecutionMode = Literal["inline", "branch", "input"]


@dataclass(frozen=True)
class RunRef:
    tenant_id: str
    run_id: str


@dataclass(frozen=True)
class RunError:
    code: str
    message: str
    # The node whose failure failed the run, when one did.
    node_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingInput:
    """A run's pause: the human_input node it waits on, the form the person answers
    (:func:`shared.workflows.human_input.form_view`) and when the wait times out (None: never)."""

    node_id: str
    form: Mapping[str, Any]
    expires_at: datetime | None = None


@dataclass(frozen=True)
class NodeRecord:
    """A node run as the interpreter needs it back: how it ended and what it produced."""

    node_id: str
    status: NodeRunStatus
    handle: str | None = None
    outputs: Mapping[str, Any] | None = None
    # ``{code, message, details?}`` of a node that failed (or was handled by its error strategy).
    error: Mapping[str, Any] | None = None
    # The text it gave the chat (a chatflow's answer node, or a container holding some).
    answer: str | None = None


@dataclass(frozen=True)
class LoadedRun:
    context: RunContext
    document: WorkflowDocument
    status: RunStatus
    nodes: Mapping[str, NodeRecord] = field(default_factory=dict)
    # A chatflow's conversation variables as the run has them now (absent ones: their defaults).
    conversation: Mapping[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def outcomes(self) -> dict[str, NodeOutcome]:
        from shared.workflows.engine.graph import NodeOutcome

        return {node_id: NodeOutcome(record.status, record.handle) for node_id, record in self.nodes.items()}

    def answers(self) -> dict[str, str | None]:
        """What each node gave the chat (a chatflow's answer nodes and containers)."""
        return {node_id: record.answer for node_id, record in self.nodes.items()}

    def pool(self) -> VariablePool:
        """The run's variables: ``sys.*``, a chatflow's conversation variables and the outputs
        of every node that succeeded."""
        from shared.workflows.engine.runner import run_pool

        pool = run_pool(self.context, self.document, self.conversation)
        for record in self.nodes.values():
            if record.status == "succeeded":
                pool.add(record.node_id, dict(record.outputs or {}))
        return pool


class RunStore(Protocol):
    """Where runs live (PostgreSQL ``workflow_runs``/``node_runs``, large outputs in S3). Every
    write is idempotent and none changes a finished run: Step Functions may deliver a task
    twice, and a cancel may land while a node still runs."""

    def load(self, run: RunRef) -> LoadedRun: ...

    def begin(self, run: RunRef) -> bool:
        """``pending`` → ``running``; whether this call changed it."""
        ...

    def dispatch(self, run: RunRef, nodes: Sequence[Node]) -> None:
        """Record ``nodes`` as running (handed to parallel branches)."""
        ...

    def skip(self, run: RunRef, nodes: Sequence[Node]) -> None: ...

    def record(self, run: RunRef, node: Node, result: NodeRunResult) -> bool:
        """Store a node's result and add its tokens to the run; False (nothing stored but the
        node marked cancelled) when the run is already over."""
        ...

    def pause(self, run: RunRef, node: Node, pending: PendingInput) -> None:
        """Record ``node`` running and the run's pending form (the run stays ``running`` until
        the token that resumes it is kept)."""
        ...

    def save_task_token(self, run: RunRef, node_id: str, task_token: str) -> PendingInput | None:
        """Keep the token that resumes a run waiting on ``node_id`` and mark the run ``paused``;
        its pending input when this call paused it (None: it was not waiting there, or it ended)."""
        ...

    def resume(self, run: RunRef, node: Node, result: NodeRunResult) -> str | None:
        """End the pause at ``node`` (the run ``paused`` → ``running``) and record its result, at
        once; the task token that resumes the execution, or None when the run was not paused at
        ``node`` (answered already, timed out, finished)."""
        ...

    def count(self, run: RunRef, transitions: int) -> None:
        """Add state transitions to the run's count."""
        ...

    def finish(self, run: RunRef, status: Literal["succeeded", "failed", "cancelled"],
               outputs: Mapping[str, Any] | None = None, error: RunError | None = None) -> bool:
        """End the run (its running nodes end ``cancelled`` unless it succeeded); False when it
        had already ended."""
        ...


class NodeRunnerPort(Protocol):
    def run(self, context: RunContext, document: WorkflowDocument, node_id: str, pool: VariablePool,
            emit: Emit | None = None) -> NodeRunResult: ...

    def run_items(self, context: RunContext, document: WorkflowDocument, node_id: str, pool: VariablePool,
                  indexed: Sequence[tuple[int, Any]], emit: Emit | None = None) -> ItemsRun:
        """Run a batch of an iteration's items (a child execution of a long iteration's Map)."""
        ...


class IterationFiles(Protocol):
    """A long iteration's files (shared/workflows/iterations.py, the payloads bucket): its
    items, the Distributed Map's item reader file, each batch's results, the stop marker."""

    def write(self, run: RunRef, node_id: str, items: Sequence[Any], batch_items: int) -> WrittenItems: ...

    def items(self, run: RunRef, node_id: str, start: int, end: int) -> list[Any]: ...

    def batches(self, run: RunRef, node_id: str) -> Batches: ...

    def put_result(self, run: RunRef, node_id: str, batch: int, result: Mapping[str, Any]) -> None: ...

    def result(self, run: RunRef, node_id: str, batch: int) -> dict[str, Any] | None: ...

    def results(self, run: RunRef, node_id: str, batches: int) -> list[dict[str, Any] | None]: ...

    def stop(self, run: RunRef, node_id: str) -> None: ...

    def stopped(self, run: RunRef, node_id: str) -> bool: ...


class RunEvents(Protocol):
    """The run's event stream (``workflow.*``, ``node.*``), read by sync callers and streams."""

    def emit(self, run: RunRef, event_type: str, data: dict[str, Any]) -> None: ...


class Executions(Protocol):
    """Executions of the interpreter's state machine."""

    def start(self, name: str, state: Mapping[str, Any]) -> str:
        """Start an execution named ``name`` (a repeated name is not an error: the start is
        idempotent); its ARN."""
        ...

    def stop(self, execution_arn: str, cause: str) -> None:
        """Stop an execution (one already stopped is not an error)."""
        ...

    def status(self, execution_arn: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; None when there is no such execution."""
        ...

    def succeed_task(self, task_token: str, output: Mapping[str, Any]) -> bool:
        """Answer a task token (SendTaskSuccess); False when the token is stale (its task timed
        out, or its execution ended)."""
        ...


# A node type's execution mode (the engine's MODES, plus what the interpreter knows of input).
ModeOf = Callable[[str], ExecutionMode]
