"""loop: runs its children's sub-graph round after round, as Dify's loop node does
(``api/core/workflow/nodes/loop``):

- Its variables (``loop_variables``) are set before the first round, each from a constant or
  a variable of the run, and checked against their declared type (``loop_variable_invalid``).
  Children read them as ``[loop_id, label]`` and ``assigner`` nodes change them; a change
  carries over to the next round, while the children's own outputs start afresh each round.
- ``break_conditions`` (if/else conditions, joined by ``logical_operator``) are checked before
  the first round (when they hold already, no round runs) and after each round; a condition
  that cannot be evaluated (a comparison between mismatched kinds) counts as not holding, as
  in Dify. The loop also ends after a round in which a ``loop_end`` child ran, or after
  ``loop_count`` rounds (at most :data:`MAX_LOOP_COUNT`).
- A ``loop.next`` ``{node_id, index}`` event marks each round's start (0-based).
- A child's failure (after its own error strategy) fails the loop (``loop_round_failed``,
  naming the round and the node).

Outputs: each variable's last value and ``loop_round``, the number of rounds run.
"""

from __future__ import annotations

from typing import Any

from shared.workflows.configs import LoopConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, selector_key
from shared.workflows.engine.nodes.if_else import ComparisonError, evaluate
from shared.workflows.validation import value_matches
from shared.workflows.variables import UnresolvedVariable, VariablePool


def resolve(call: NodeCall[LoopConfig]) -> dict[str, Any]:
    inputs: dict[str, Any] = {"loop_count": call.config.loop_count}
    for variable in call.config.loop_variables:
        if variable.value_type == "constant":
            inputs[variable.label] = variable.value
            continue
        try:
            inputs[variable.label] = call.pool.get(variable.value)
        except UnresolvedVariable as exc:
            raise NodeFailure("loop_variable_missing",
                              f"Loop variable {variable.label!r} starts from {selector_key(variable.value)}, which "
                              "has no value in this run (its node did not run)") from exc
    return inputs


def _breaks(config: LoopConfig, pool: VariablePool) -> bool:
    if not config.break_conditions:
        return False
    for condition in config.break_conditions:
        expected = condition.value
        if isinstance(expected, str):
            expected = pool.render(expected)
        try:
            holds = evaluate(condition.comparison_operator, pool.get_or_none(condition.variable_selector), expected)
        except ComparisonError:
            holds = False
        if config.logical_operator == "and" and not holds:
            return False
        if config.logical_operator == "or" and holds:
            return True
    return config.logical_operator == "and"


def execute(call: NodeCall[LoopConfig], inputs: dict[str, Any]) -> NodeOutput:
    from shared.workflows.engine.containers import child_failure, run_scope, stopped

    config, loop_id = call.config, call.node.id
    types = {variable.label: variable.var_type for variable in config.loop_variables}
    values = {label: inputs[label] for label in types}
    for label, var_type in types.items():
        if values[label] is not None and not value_matches(values[label], var_type):
            raise NodeFailure("loop_variable_invalid",
                              f"Loop variable {label!r} is declared {var_type}; its initial value is not",
                              details={"variable": label})
    rounds = 0
    if not _breaks(config, call.pool.layer({loop_id: values})):
        for index in range(config.loop_count):
            call.emit("loop.next", {"node_id": loop_id, "index": index})
            pool = call.pool.layer({loop_id: dict(values)}, writable={loop_id: types})
            scope = run_scope(call, pool, index)
            values = {label: pool.get_or_none([loop_id, label]) for label in types}
            rounds = index + 1
            if scope.status == "stopped":
                raise stopped()
            if scope.failed is not None:
                raise child_failure("loop_round_failed", "Round", scope.failed)
            if any(child.result.status == "succeeded" and _is_loop_end(call, child.node_id) for child in scope.ran):
                break
            if _breaks(config, pool):
                break
    return NodeOutput({**values, "loop_round": rounds})


def _is_loop_end(call: NodeCall[LoopConfig], node_id: str) -> bool:
    return call.document is not None and call.document.node(node_id).type == "loop_end"


EXECUTOR = NodeExecutor(resolve, execute)
