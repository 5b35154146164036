"""In-memory ports of our own for the workflow interpreter (a run store, the run's events) and a
node runner that records what it ran around the engine's real one."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from shared.workflows.definition import Node, WorkflowDocument
from shared.workflows.engine.runner import Emit, ItemsRun, NodeRunner, NodeRunResult, RunContext
from shared.workflows.iterations import Batches, WrittenItems
from shared.workflows.ports import FINAL_STATUSES, LoadedRun, NodeRecord, PendingInput, RunError, RunRef, RunStatus
from shared.workflows.variables import VariablePool


@dataclass
class StoredRun:
    run: LoadedRun
    outputs: dict[str, Any] | None = None
    error: RunError | None = None
    transitions: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    # (node id, status) in the order they were written.
    writes: list[tuple[str, str]] = field(default_factory=list)
    # Each settled node's whole result (children included), as the store was handed it.
    results: dict[str, NodeRunResult] = field(default_factory=dict)
    # The run's pending form (kept after it resumed, as the PostgreSQL store keeps it).
    pending: PendingInput | None = None


class MemoryRunStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs: dict[RunRef, StoredRun] = {}
        self.token_saved = threading.Condition(self._lock)

    def create(self, ref: RunRef, document: WorkflowDocument, inputs: Mapping[str, Any] | None = None) -> None:
        context = RunContext(tenant_id=uuid.UUID(ref.tenant_id), run_id=ref.run_id, workflow_id=str(uuid.uuid4()),
                             version="1", user_id="user-1", started_at=datetime.now(UTC), inputs=dict(inputs or {}))
        with self._lock:
            self.runs[ref] = StoredRun(LoadedRun(context, document, "pending"))

    def load(self, run: RunRef) -> LoadedRun:
        with self._lock:
            return self.runs[run].run

    def _set(self, run: RunRef, record: NodeRecord) -> None:
        stored = self.runs[run]
        stored.run = replace(stored.run, nodes={**stored.run.nodes, record.node_id: record})
        stored.writes.append((record.node_id, record.status))

    def _status(self, run: RunRef, status: RunStatus) -> None:
        self.runs[run].run = replace(self.runs[run].run, status=status)

    def begin(self, run: RunRef) -> bool:
        with self._lock:
            if self.runs[run].run.status != "pending":
                return False
            self._status(run, "running")
            return True

    def dispatch(self, run: RunRef, nodes: Sequence[Node]) -> None:
        with self._lock:
            for node in nodes:
                if node.id not in self.runs[run].run.nodes:
                    self._set(run, NodeRecord(node.id, "running"))

    def skip(self, run: RunRef, nodes: Sequence[Node]) -> None:
        with self._lock:
            for node in nodes:
                if node.id not in self.runs[run].run.nodes:
                    self._set(run, NodeRecord(node.id, "skipped"))

    def record(self, run: RunRef, node: Node, result: NodeRunResult) -> bool:
        with self._lock:
            stored = self.runs[run]
            existing = stored.run.nodes.get(node.id)
            if existing is not None and existing.status != "running":
                return stored.run.status not in FINAL_STATUSES
            live = stored.run.status not in FINAL_STATUSES
            stored.results[node.id] = result
            self._set(run, NodeRecord(node.id, result.status if live else "cancelled",
                                      result.handle if result.status == "succeeded" else None,
                                      result.outputs, result.error.to_dict() if result.error else None))
            return live

    def pause(self, run: RunRef, node: Node, pending: PendingInput) -> None:
        with self._lock:
            stored = self.runs[run]
            if node.id not in stored.run.nodes:
                self._set(run, NodeRecord(node.id, "running"))
            if stored.run.status == "running":
                stored.pending = pending

    def save_task_token(self, run: RunRef, node_id: str, task_token: str) -> PendingInput | None:
        with self._lock:
            stored = self.runs[run]
            stored.tokens[node_id] = task_token
            self.token_saved.notify_all()
            if stored.run.status != "running" or stored.pending is None or stored.pending.node_id != node_id:
                return None
            self._status(run, "paused")
            return stored.pending

    def resume(self, run: RunRef, node: Node, result: NodeRunResult) -> str | None:
        with self._lock:
            stored = self.runs[run]
            if stored.run.status != "paused" or stored.pending is None or stored.pending.node_id != node.id:
                return None
            self._status(run, "running")
            stored.results[node.id] = result
            self._set(run, NodeRecord(node.id, result.status, result.handle if result.status == "succeeded" else None,
                                      result.outputs, result.error.to_dict() if result.error else None))
            return stored.tokens.get(node.id, "")

    def count(self, run: RunRef, transitions: int) -> None:
        with self._lock:
            self.runs[run].transitions += transitions

    def finish(self, run: RunRef, status: Literal["succeeded", "failed", "cancelled"],
               outputs: Mapping[str, Any] | None = None, error: RunError | None = None) -> bool:
        with self._lock:
            stored = self.runs[run]
            if stored.run.status in FINAL_STATUSES:
                return False
            self._status(run, status)
            stored.outputs = dict(outputs) if outputs is not None else None
            stored.error = error
            if status != "succeeded":
                for record in list(stored.run.nodes.values()):
                    if record.status == "running":
                        self._set(run, replace(record, status="cancelled"))
            return True


class MemoryRunEvents:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[RunRef, str, dict[str, Any]]] = []

    def emit(self, run: RunRef, event_type: str, data: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((run, event_type, data))

    def types(self, run: RunRef) -> list[str]:
        with self._lock:
            return [kind for ref, kind, _ in self.events if ref == run]


class RecordingRunner:
    """The engine's node runner, recording which nodes it ran and on which thread."""

    def __init__(self, runner: NodeRunner) -> None:
        self._runner = runner
        self._lock = threading.Lock()
        self.calls: list[str] = []
        self.threads: set[str] = set()
        # The item indexes of each batch of a long iteration it ran.
        self.batches: list[list[int]] = []

    def run(self, context: RunContext, document: WorkflowDocument, node_id: str, pool: VariablePool,
            emit: Emit | None = None) -> NodeRunResult:
        with self._lock:
            self.calls.append(node_id)
            self.threads.add(threading.current_thread().name)
        return self._runner.run(context, document, node_id, pool, emit)

    def run_items(self, context: RunContext, document: WorkflowDocument, node_id: str, pool: VariablePool,
                  indexed: Sequence[tuple[int, Any]], emit: Emit | None = None) -> ItemsRun:
        with self._lock:
            self.batches.append([index for index, _ in indexed])
        return self._runner.run_items(context, document, node_id, pool, indexed, emit)


class FakeCodeRunner:
    """A code runner of our own port: ``main``'s result computed in Python from the inputs
    (``answer(inputs)``), or an exception to raise; never runs the code."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls = 0

    def run(self, request: Any) -> dict[str, Any]:
        self.calls += 1
        if isinstance(self.answer, BaseException):
            raise self.answer
        return dict(self.answer(dict(request.inputs)))


class MemoryIterationFiles:
    """A long iteration's files in memory (the port shared/workflows/iterations.py implements on S3)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items_of: dict[tuple[RunRef, str], list[Any]] = {}
        self.batches_of: dict[tuple[RunRef, str], Batches] = {}
        self.results_of: dict[tuple[RunRef, str, int], dict[str, Any]] = {}
        self.stops: set[tuple[RunRef, str]] = set()

    def write(self, run: RunRef, node_id: str, items: Sequence[Any], batch_items: int) -> WrittenItems:
        batches = [(start, min(start + batch_items, len(items))) for start in range(0, len(items), batch_items)]
        with self._lock:
            self.items_of[(run, node_id)] = list(items)
            self.batches_of[(run, node_id)] = Batches(len(items), batches, 0)
        return WrittenItems("memory", f"{run.run_id}/{node_id}/batches.json", len(batches))

    def items(self, run: RunRef, node_id: str, start: int, end: int) -> list[Any]:
        return self.items_of[(run, node_id)][start:end]

    def batches(self, run: RunRef, node_id: str) -> Batches:
        return self.batches_of[(run, node_id)]

    def put_result(self, run: RunRef, node_id: str, batch: int, result: Mapping[str, Any]) -> None:
        with self._lock:
            self.results_of[(run, node_id, batch)] = dict(result)

    def result(self, run: RunRef, node_id: str, batch: int) -> dict[str, Any] | None:
        return self.results_of.get((run, node_id, batch))

    def results(self, run: RunRef, node_id: str, batches: int) -> list[dict[str, Any] | None]:
        return [self.result(run, node_id, batch) for batch in range(batches)]

    def stop(self, run: RunRef, node_id: str) -> None:
        self.stops.add((run, node_id))

    def stopped(self, run: RunRef, node_id: str) -> bool:
        return (run, node_id) in self.stops
