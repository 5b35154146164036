"""Test doubles for the workflow interpreter's ports: an in-memory run store and node
executors that record what they did (the real ones arrive with the workflow engine)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from shared.workflows.ports import (
    ExecutionMode,
    Graph,
    NodeContext,
    NodeState,
    NodeStatus,
    Run,
    RunError,
    RunRef,
)


@dataclass
class StoredRun:
    run: Run
    error: RunError | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    writes: list[tuple[str, NodeStatus]] = field(default_factory=list)


class MemoryRunStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs: dict[RunRef, StoredRun] = {}
        self.token_saved = threading.Condition(self._lock)

    def create(self, ref: RunRef, graph: Graph) -> None:
        with self._lock:
            self.runs[ref] = StoredRun(Run(graph))

    def load(self, run: RunRef) -> Run:
        with self._lock:
            return self.runs[run].run

    def set_node(self, run: RunRef, node_id: str, status: NodeStatus,
                 output: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            stored = self.runs[run]
            nodes = dict(stored.run.nodes)
            nodes[node_id] = NodeState(status, dict(output) if output is not None else nodes.get(
                node_id, NodeState()).output)
            stored.run = replace(stored.run, nodes=nodes)
            stored.writes.append((node_id, status))

    def save_task_token(self, run: RunRef, node_id: str, task_token: str) -> None:
        with self._lock:
            self.runs[run].tokens[node_id] = task_token
            self.token_saved.notify_all()

    def finish(self, run: RunRef, status: Literal["succeeded", "failed"], error: RunError | None = None) -> None:
        with self._lock:
            stored = self.runs[run]
            stored.run = replace(stored.run, status=status)
            stored.error = error

    def wait_for_token(self, run: RunRef, node_id: str, timeout_s: float = 30.0) -> str:
        with self._lock:
            if not self.token_saved.wait_for(lambda: node_id in self.runs[run].tokens, timeout=timeout_s):
                raise TimeoutError(f"no task token for {node_id}")
            return self.runs[run].tokens[node_id]


class NodeBroke(RuntimeError):
    """What a failing test node raises (Lambda reports it as errorType NodeBroke)."""


@dataclass
class RecordingExecutor:
    """Runs ``compute`` over the node's inputs and records every call (node id, thread)."""

    mode: ExecutionMode
    compute: Callable[[NodeContext], Mapping[str, Any]]
    calls: list[str] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    def execute(self, context: NodeContext) -> Mapping[str, Any]:
        self.calls.append(context.node.id)
        self.threads.add(threading.current_thread().name)
        return self.compute(context)
