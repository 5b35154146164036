"""What the workflow interpreter works over: a run's graph, where its nodes stand, and the
ports that keep them (a run store) and run them (node executors), plus the executions of the
interpreter's state machine. Node types and the PostgreSQL run store arrive with the workflow
engine; the loop protocol (interpreter.py) does not change with them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

NodeStatus = Literal["pending", "dispatched", "waiting", "succeeded", "failed"]
RunStatus = Literal["running", "succeeded", "failed"]
# inline: cheap, run inside the step invocation (consecutive ones fused); branch: its own
# invocation, in parallel with the other ready nodes (the Map); input: waits for a person
# (.waitForTaskToken).
ExecutionMode = Literal["inline", "branch", "input"]


@dataclass(frozen=True)
class RunRef:
    tenant_id: str
    run_id: str


@dataclass(frozen=True)
class Node:
    id: str
    type: str


@dataclass(frozen=True)
class Edge:
    source: str
    target: str


@dataclass(frozen=True)
class Graph:
    """A workflow version's nodes and edges (a DAG; joins are nodes with several sources)."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...] = ()

    def __post_init__(self) -> None:
        ids = [node.id for node in self.nodes]
        if len(ids) != len(set(ids)):
            raise ValueError("node ids must be unique")
        unknown = {e.source for e in self.edges} | {e.target for e in self.edges}
        if unknown - set(ids):
            raise ValueError(f"edges name unknown nodes {sorted(unknown - set(ids))}")

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def sources(self, node_id: str) -> tuple[str, ...]:
        return tuple(e.source for e in self.edges if e.target == node_id)


@dataclass(frozen=True)
class NodeState:
    status: NodeStatus = "pending"
    output: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RunError:
    code: str
    message: str


@dataclass(frozen=True)
class Run:
    """A run as the interpreter reads it."""

    graph: Graph
    status: RunStatus = "running"
    nodes: Mapping[str, NodeState] = field(default_factory=dict)

    def state(self, node_id: str) -> NodeState:
        return self.nodes.get(node_id, NodeState())


class RunStore(Protocol):
    """Where runs live (PostgreSQL ``runs``/``node_runs`` with the engine). Every write is
    idempotent: Step Functions may deliver a task twice."""

    def load(self, run: RunRef) -> Run: ...

    def set_node(self, run: RunRef, node_id: str, status: NodeStatus,
                 output: Mapping[str, Any] | None = None) -> None: ...

    def save_task_token(self, run: RunRef, node_id: str, task_token: str) -> None: ...

    def finish(self, run: RunRef, status: Literal["succeeded", "failed"], error: RunError | None = None) -> None: ...


@dataclass(frozen=True)
class NodeContext:
    run: RunRef
    node: Node
    # The outputs of the node's sources, by source node id.
    inputs: Mapping[str, Mapping[str, Any]]


class NodeExecutor(Protocol):
    mode: ExecutionMode

    def execute(self, context: NodeContext) -> Mapping[str, Any]:
        """Run the node; its output. Raising fails the invocation (the state machine's Retry
        and Catch apply); node-level retry and error strategies are the executor's."""
        ...


class ExecutorRegistry:
    """Node type → executor. Empty until the engine registers its node types."""

    def __init__(self, executors: Mapping[str, NodeExecutor] | None = None) -> None:
        self._executors = dict(executors or {})

    def register(self, node_type: str, executor: NodeExecutor) -> None:
        self._executors[node_type] = executor

    def executor(self, node_type: str) -> NodeExecutor:
        try:
            return self._executors[node_type]
        except KeyError:
            raise UnknownNodeType(node_type) from None


class UnknownNodeType(LookupError):
    def __init__(self, node_type: str) -> None:
        super().__init__(f"no executor registered for node type {node_type!r}")
        self.node_type = node_type


class Executions(Protocol):
    """Executions of the interpreter's state machine."""

    def start(self, name: str, state: Mapping[str, Any]) -> str:
        """Start an execution named ``name`` (a repeated name is not an error: the start is
        idempotent); its ARN."""
        ...
