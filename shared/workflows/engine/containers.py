"""Running a container's sub-graph: the driver an ``iteration`` or ``loop`` executor calls for
each item or round. It plans the container's children (``plan(..., scope=container)``) and
runs the ready ones one after the other through the same :class:`NodeRunner` as any node
(their own retry, timeout and error strategy), against a layer of the run's variable pool
(:meth:`VariablePool.layer`): what the container gives them (item and index, loop variables)
and their own outputs, over everything upstream of the container.

Each child's run is recorded on the container (``NodeCall.record``: a
:class:`~shared.workflows.engine.runner.ChildRun` with the item or round index), its tokens
counted on the container, and its events forwarded with ``container_id`` and ``index``. A
child that fails (after its error strategy) ends the sub-graph for that item or round; the
container decides what that means (iteration: its ``error_handle_mode``; loop: the loop fails).
The sub-graph also stops before its next child once the container's attempt was given up
(its timeout) or ``stop`` is set (a parallel iteration terminating on another item's failure).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.graph import NodeOutcome, plan
from shared.workflows.engine.nodes.base import NodeCall
from shared.workflows.engine.runner import ChildRun
from shared.workflows.variables import VariablePool


@dataclass
class ScopeRun:
    # stopped: the container's attempt was given up, or ``stop`` was set, before it finished.
    status: Literal["succeeded", "failed", "stopped"]
    # The child whose failure ended it.
    failed: ChildRun | None = None
    # The children that ran, in the order they ran.
    ran: list[ChildRun] = field(default_factory=list)


def run_scope(call: NodeCall[Any], pool: VariablePool, index: int, stop: threading.Event | None = None) -> ScopeRun:
    """Run the container's children once (item or round ``index``) against ``pool``."""
    document, runner, container = call.document, call.runner, call.node.id
    if document is None or runner is None:
        raise NodeFailure("container_not_runnable", "This container node was run without its workflow document; "
                                                    "run it through the workflow engine")

    def emit(kind: str, data: dict[str, Any]) -> None:
        call.emit(kind, {**data, "container_id": container, "index": index})

    outcomes: dict[str, NodeOutcome] = {}
    run = ScopeRun("succeeded")
    while True:
        step = plan(document, outcomes, scope=container)
        for node_id in step.skipped:
            outcomes[node_id] = NodeOutcome("skipped")
        if step.finished:
            return run
        for node_id in step.ready:
            if call.cancelled.is_set() or (stop is not None and stop.is_set()):
                run.status = "stopped"
                return run
            result = runner.run(call.context, document, node_id, pool, emit)
            child = ChildRun(node_id, index, result)
            call.record(child)
            call.spend(result.tokens)
            run.ran.append(child)
            outcomes[node_id] = result.outcome
            if result.status == "failed":
                run.status, run.failed = "failed", child
                return run
            pool.add(node_id, result.outputs)


def child_failure(code: str, what: str, child: ChildRun) -> NodeFailure:
    """The container's failure for a child's: which item or round, which node, and why."""
    error = child.result.error
    reason = f"{error.message} ({error.code})" if error else "it failed"
    return NodeFailure(code, f"{what} {child.index} failed at node {child.node_id!r}: {reason}",
                       details={"index": child.index, "node_id": child.node_id,
                                "error": error.to_dict() if error else None})


def stopped() -> NodeFailure:
    return NodeFailure("container_stopped", "The container stopped before its children finished (its timeout)")
