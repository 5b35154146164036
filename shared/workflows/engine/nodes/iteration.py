"""iteration: runs its children's sub-graph once per item of a list and answers ``output``,
the value of ``output_selector`` (a child's output) of each item, in item order, as Dify's
iteration node does (``api/core/workflow/nodes/iteration``):

- Each item runs against a layer of the run's pool holding ``[iteration_id, "item"]`` and
  ``[iteration_id, "index"]`` (0-based) and the item's own children's outputs; an
  ``iteration.next`` ``{node_id, index}`` event marks its start.
- In order, or with ``is_parallel`` up to ``parallel_nums`` items at once (threads); the
  outputs keep item order either way.
- An item fails when one of its children fails (after the child's own error strategy):
  ``terminated`` fails the node (``iteration_item_failed``, naming the item and the node; in
  parallel, items not started are not run and running ones stop before their next node);
  ``continue-on-error`` answers None for the item; ``remove-abnormal-output`` leaves it out.
- ``flatten_output`` (Dify's default): when every output that is not None is a list, they are
  concatenated (None items dropped), so a child answering ``[a, b]`` per item gives one list.
- The list: an iterator with no value (None) answers ``[]``; one that is not a list fails
  (``iteration_input_invalid``); more than :data:`MAX_ITERATION_ITEMS` items fails
  (``iteration_too_many_items``) before any item runs.
- A run's interpreter sends a list over its inline bound through a Distributed Map instead
  (docs/adr/0038-long-iterations-distributed-map.md): batches of items run with
  :func:`run_in_order` (``NodeRunner.run_items``) and the join settles the node with
  :func:`assemble`, as :func:`execute` does here.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.workflows.configs import MAX_ITERATION_ITEMS, IterationConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, selector_key
from shared.workflows.variables import UnresolvedVariable

if TYPE_CHECKING:
    from shared.workflows.engine.runner import ChildRun

ITEMS = "items"


@dataclass
class ItemResult:
    """One item's run: its output (``output_selector``'s value), or the child whose failure
    failed it. What both paths collect: in-process, and a batch of the interpreter's
    Distributed Map (docs/adr/0038-long-iterations-distributed-map.md)."""

    index: int
    succeeded: bool
    output: Any = None
    failed: ChildRun | None = None


def resolve(call: NodeCall[IterationConfig]) -> dict[str, Any]:
    selector = call.config.iterator_selector
    try:
        return {selector_key(selector): call.pool.get(selector)}
    except UnresolvedVariable as exc:
        raise NodeFailure("iteration_input_missing",
                          f"The list to iterate over, {selector_key(selector)}, has no value in this run (its node "
                          "did not run); iterate over the output of a node that runs before this one") from exc


def checked_items(config: IterationConfig, items: Any) -> list[Any]:
    """The list to iterate over: None answers ``[]``; a value that is not a list or a list
    longer than :data:`MAX_ITERATION_ITEMS` fails the node before any item runs."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise NodeFailure("iteration_input_invalid",
                          f"{selector_key(config.iterator_selector)} is a {type(items).__name__}, not a list; "
                          "an iteration runs over an array")
    if len(items) > MAX_ITERATION_ITEMS:
        raise NodeFailure("iteration_too_many_items",
                          f"The list has {len(items)} items; an iteration runs at most {MAX_ITERATION_ITEMS}: "
                          "split the list (e.g. a code node answering a slice) or loop over batches",
                          details={"items": len(items), "max_items": MAX_ITERATION_ITEMS})
    return items


def execute(call: NodeCall[IterationConfig], inputs: dict[str, Any]) -> NodeOutput:
    config = call.config
    items = checked_items(config, inputs[selector_key(config.iterator_selector)])
    indexed = list(enumerate(items))
    results = _parallel(call, indexed) if config.is_parallel and len(items) > 1 else run_in_order(call, indexed)
    return assemble(config, results)


def assemble(config: IterationConfig, results: list[ItemResult]) -> NodeOutput:
    """The node's output from its items' results (any order): in item order, the first failed
    item failing the node under ``terminated``, a None under ``continue-on-error``, nothing
    under ``remove-abnormal-output``; flattened with ``flatten_output``."""
    ordered = sorted(results, key=lambda result: result.index)
    failed = [result for result in ordered if not result.succeeded]
    if failed and config.error_handle_mode == "terminated":
        raise _terminate(failed[0])
    collected: list[Any] = []
    for result in ordered:
        if result.succeeded:
            collected.append(result.output)
        elif config.error_handle_mode == "continue-on-error":
            collected.append(None)
    return NodeOutput({"output": flattened(collected) if config.flatten_output else collected})


def flattened(outputs: list[Any]) -> list[Any]:
    """The outputs concatenated when every one that is not None is a list (Nones dropped);
    else as they are."""
    present = [output for output in outputs if output is not None]
    if not present or not all(isinstance(output, list) for output in present):
        return outputs
    return [value for output in present for value in output]


def _run_item(call: NodeCall[IterationConfig], index: int, item: Any, stop: threading.Event | None) -> ItemResult:
    from shared.workflows.engine.containers import run_scope, stopped

    call.emit("iteration.next", {"node_id": call.node.id, "index": index})
    pool = call.pool.layer({call.node.id: {"item": item, "index": index}})
    scope = run_scope(call, pool, index, stop)
    if scope.status == "stopped":
        raise stopped()
    if scope.status == "failed":
        return ItemResult(index, False, failed=scope.failed)
    selector = call.config.output_selector
    return ItemResult(index, True, pool.get_or_none(selector) if selector else None)


def _terminate(item: ItemResult) -> NodeFailure:
    from shared.workflows.engine.containers import child_failure

    assert item.failed is not None
    return child_failure("iteration_item_failed", "Item", item.failed)


def run_in_order(call: NodeCall[IterationConfig], indexed: list[tuple[int, Any]]) -> list[ItemResult]:
    """Run ``(index, item)`` pairs one after the other; under ``terminated`` none runs after
    the first that fails (whose result is the last one answered)."""
    results = []
    for index, item in indexed:
        result = _run_item(call, index, item, None)
        results.append(result)
        if not result.succeeded and call.config.error_handle_mode == "terminated":
            break
    return results


def _parallel(call: NodeCall[IterationConfig], indexed: list[tuple[int, Any]]) -> list[ItemResult]:
    terminate = call.config.error_handle_mode == "terminated"
    stop = threading.Event()

    def work(index: int, item: Any) -> ItemResult | None:
        if stop.is_set():
            return None  # another item failed: this one does not start
        try:
            result = _run_item(call, index, item, stop)
        except NodeFailure:
            if stop.is_set() and not call.cancelled.is_set():
                return None  # stopped because another item failed
            raise
        if not result.succeeded and terminate:
            stop.set()
        return result

    workers = min(call.config.parallel_nums, len(indexed))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"iteration-{call.node.id}") as pool:
        # Each item in a copy of the caller's context (a context runs in one thread at a time).
        futures = [pool.submit(contextvars.copy_context().run, work, index, item) for index, item in indexed]
        try:
            results = [future.result() for future in futures]
        except BaseException:
            stop.set()
            raise
    return [result for result in results if result is not None]


EXECUTOR = NodeExecutor(resolve, execute)
