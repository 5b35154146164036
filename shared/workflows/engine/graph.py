"""Which nodes of a run are ready, which are skipped, and whether the run has nothing left to
do: Dify's graph-engine semantics over a :class:`WorkflowDocument` and the nodes' outcomes.

An edge is *taken* when its source succeeded and left by the edge's ``source_handle``
(``source``; an if/else case id or ``false``; ``fail-branch``), *dead* when its source was
skipped or succeeded by another handle, and *unsettled* otherwise (the source is pending,
running, failed or cancelled). A pending node is ready when every incoming edge is settled and
at least one is taken (a join waits for all its branches, and runs if any of them ran); it is
skipped when every incoming edge is dead. Skips propagate: :func:`plan` follows them to a fixed
point, so one call answers every node skipped and every node that became ready because of it.

A plan covers one *scope*: the top level of the graph (the run's; a container counts as one
node there and its children are not part of it), or the children of one container (what the
container runs for each item or round, :mod:`.containers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from shared.workflows.definition import SOURCE_HANDLE, Edge, WorkflowDocument

NodeStatus = Literal["pending", "running", "succeeded", "failed", "skipped", "cancelled"]
EdgeState = Literal["taken", "dead", "unsettled"]

# inline: cheap, run inside the step invocation (consecutive ones fused); branch: its own
# invocation, in parallel with the other ready nodes (the Map); input: the run pauses for a
# person's answer (.waitForTaskToken).
MODES: dict[str, Literal["inline", "branch", "input"]] = {
    "start": "inline", "end": "inline", "if_else": "inline", "template": "inline", "variable_aggregator": "inline",
    "llm": "branch", "code": "branch", "http_request": "branch", "knowledge_retrieval": "branch",
    # A container runs its whole sub-graph in its own invocation.
    "iteration": "branch", "loop": "branch",
    # Only ever run by their container, inside its invocation.
    "iteration_start": "inline", "loop_start": "inline", "loop_end": "inline", "assigner": "inline",
    "list_operator": "inline", "question_classifier": "branch", "parameter_extractor": "branch",
    "document_extractor": "branch",
    "human_input": "input",
    # A sub-workflow runs the called workflow's whole graph in its own invocation.
    "sub_workflow": "branch",
    # A chatflow's reply: rendering its template is cheap.
    "answer": "inline",
    # A tool call (network I/O, up to the tool's timeout) and an agent's answer (a model, maybe
    # retrieval): their own invocation.
    "tool": "branch", "agent": "branch",
}

_PENDING = "pending"


@dataclass(frozen=True)
class NodeOutcome:
    """What the graph needs to know of a node: its status and, once it succeeded, the handle
    it left by. A node handled by its error strategy (default value, failure branch) succeeded."""

    status: NodeStatus
    handle: str | None = None


@dataclass(frozen=True)
class Plan:
    # Pending nodes whose incoming edges are all settled with one taken (a node without
    # incoming edges, the start, at once), in document order.
    ready: list[str]
    # Pending nodes whose incoming edges are all dead, followed transitively: record them
    # skipped (planning again finds nothing more to skip).
    skipped: list[str]
    # Nothing ready and nothing running: the run has nothing more to do (a failed node leaves
    # its downstream nodes pending; the run failed with it).
    finished: bool


def edge_state(edge: Edge, outcomes: Mapping[str, NodeOutcome]) -> EdgeState:
    outcome = outcomes.get(edge.source)
    if outcome is None:
        return "unsettled"
    if outcome.status == "skipped":
        return "dead"
    if outcome.status == "succeeded":
        return "taken" if (outcome.handle or SOURCE_HANDLE) == edge.source_handle else "dead"
    return "unsettled"


def plan(document: WorkflowDocument, outcomes: Mapping[str, NodeOutcome], scope: str | None = None) -> Plan:
    """The next work of a run whose nodes stand as ``outcomes`` say (a node absent from it is
    pending), in ``scope``: the top level (None) or the children of the container of that id."""
    nodes = document.children(scope)
    incoming: dict[str, list[Edge]] = {node.id: [] for node in nodes}
    for edge in document.edges:
        if edge.target in incoming and edge.source in incoming:
            incoming[edge.target].append(edge)
    states: dict[str, NodeOutcome] = dict(outcomes)

    def pending(node_id: str) -> bool:
        outcome = states.get(node_id)
        return outcome is None or outcome.status == _PENDING

    skipped: list[str] = []
    changed = True
    while changed:
        changed = False
        for node in nodes:
            edges = incoming[node.id]
            if not edges or not pending(node.id):
                continue
            if all(edge_state(edge, states) == "dead" for edge in edges):
                states[node.id] = NodeOutcome("skipped")
                skipped.append(node.id)
                changed = True
    ready = []
    for node in nodes:
        if not pending(node.id):
            continue
        edge_states = [edge_state(edge, states) for edge in incoming[node.id]]
        if not edge_states or ("unsettled" not in edge_states and "taken" in edge_states):
            ready.append(node.id)
    running = any(outcome.status == "running" for outcome in states.values())
    return Plan(ready=ready, skipped=skipped, finished=not ready and not running)


def graph_order(document: WorkflowDocument) -> list[str]:
    """Node ids in topological order, ties broken by document order (the order in which a run
    merges its end nodes' outputs)."""
    position = {node.id: index for index, node in enumerate(document.nodes)}
    remaining = {node.id: 0 for node in document.nodes}
    for edge in document.edges:
        if edge.target in remaining and edge.source in position:
            remaining[edge.target] += 1
    order: list[str] = []
    frontier = sorted((node_id for node_id, count in remaining.items() if count == 0), key=position.__getitem__)
    while frontier:
        node_id = frontier.pop(0)
        order.append(node_id)
        released = []
        for edge in document.outgoing(node_id):
            if edge.target in remaining:
                remaining[edge.target] -= 1
                if remaining[edge.target] == 0:
                    released.append(edge.target)
        frontier = sorted([*frontier, *released], key=position.__getitem__)
    # A cycle (refused by validation) leaves nodes out: they follow in document order.
    return order + [node.id for node in document.nodes if node.id not in set(order)]
