"""sub_workflow: run a published version of another workflow of the tenant, inline, and answer
its outputs (docs/adr/0036-human-input-and-sub-workflows.md).

The called version (pinned, or the latest published one when the node runs) is resolved through
the engine's ``workflows`` port; its start variables take the node's ``inputs`` (checked as a
run's inputs are); its top-level graph is planned and run in this node's invocation, node after
node, through the same runner as any node (their own retry, timeout and error strategy). Each of
its nodes' runs is recorded on this node (``children``, index 0) and its events are forwarded
with ``container_id`` set to this node. A called workflow may call others, at most
``MAX_SUB_WORKFLOW_DEPTH`` deep and never one already on the call path (publishing refuses both;
this holds at run time too, as "latest" moves).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from shared.errors import StratusError
from shared.workflows.configs import MAX_SUB_WORKFLOW_DEPTH, SubWorkflowConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, values_of


def resolve(call: NodeCall[SubWorkflowConfig]) -> dict[str, Any]:
    return values_of(call.pool, {binding.variable: binding.value_selector for binding in call.config.inputs})


def execute(call: NodeCall[SubWorkflowConfig], inputs: dict[str, Any]) -> NodeOutput:
    from shared.workflows.engine.graph import NodeOutcome, plan
    from shared.workflows.engine.runner import ChildRun, run_outputs
    from shared.workflows.errors import WorkflowInputInvalid
    from shared.workflows.validation import validate_inputs
    from shared.workflows.variables import VariablePool

    config, context = call.config, call.context
    workflows, runner = call.ports.workflows, call.runner
    if workflows is None or runner is None:
        raise NodeFailure("sub_workflow_unavailable", "Sub-workflows cannot run here (no workflow store); run the "
                                                      "workflow through the workflow engine")
    lineage = (*context.lineage, context.workflow_id)
    if len(lineage) > MAX_SUB_WORKFLOW_DEPTH:
        raise NodeFailure("sub_workflow_too_deep",
                          f"Sub-workflows nest at most {MAX_SUB_WORKFLOW_DEPTH} deep; this call would be "
                          f"{len(lineage) + 1}", details={"lineage": list(lineage)})
    try:
        target = uuid.UUID(config.workflow_id)
    except ValueError:
        raise NodeFailure("sub_workflow_not_found", f"{config.workflow_id!r} is not a workflow id") from None
    # The lineage holds canonical ids; the config may spell one otherwise (upper case, braces).
    if str(target) in lineage:
        raise NodeFailure("sub_workflow_cycle", f"Workflow {target} is already running on this call "
                                                f"path ({' → '.join([*lineage, str(target)])})",
                          details={"lineage": list(lineage)})
    try:
        called = workflows.resolve_for_run(context.tenant_id, target, config.version)
    except StratusError as exc:
        code = "sub_workflow_not_published" if exc.code == "workflow_not_published" else "sub_workflow_not_found"
        raise NodeFailure(code, f"The called workflow {config.workflow_id} cannot run: {exc.message}",
                          details={"workflow_id": config.workflow_id, "version": config.version}) from None
    try:
        child_inputs = validate_inputs(called.document, inputs)
    except WorkflowInputInvalid as exc:
        raise NodeFailure("sub_workflow_input_invalid", f"The called workflow's inputs: {exc.message}",
                          details=dict(exc.details)) from None
    child = replace(context, workflow_id=str(called.workflow_id), version=str(called.version),
                    inputs=child_inputs, lineage=lineage)
    document = called.document
    pool = VariablePool(child.system())
    outcomes: dict[str, NodeOutcome] = {}

    def emit(kind: str, data: dict[str, Any]) -> None:
        call.emit(kind, {**data, "container_id": call.node.id, "index": 0})

    while True:
        step = plan(document, outcomes)
        for node_id in step.skipped:
            outcomes[node_id] = NodeOutcome("skipped")
        if step.finished:
            break
        for node_id in step.ready:
            if call.cancelled.is_set():
                raise NodeFailure("container_stopped", "The sub-workflow stopped before it finished (its timeout)")
            result = runner.run(child, document, node_id, pool, emit)
            call.record(ChildRun(node_id, 0, result))
            call.spend(result.tokens)
            outcomes[node_id] = result.outcome
            if result.status == "failed":
                error = result.error
                reason = f"{error.message} ({error.code})" if error else "it failed"
                raise NodeFailure("sub_workflow_failed",
                                  f"The called workflow failed at node {node_id!r}: {reason}",
                                  details={"workflow_id": str(called.workflow_id), "version": called.version,
                                           "node_id": node_id, "error": error.to_dict() if error else None})
            pool.add(node_id, result.outputs)
    answered = run_outputs(document, outcomes, pool)
    return NodeOutput({output.variable: answered.get(output.variable) for output in config.outputs})


EXECUTOR = NodeExecutor(resolve, execute)
