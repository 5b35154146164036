"""What publishing checks of a document's sub-workflow nodes (docs/adr/0036): each names a
published version of a live workflow of the tenant (pinned, or the latest), maps only inputs
that version takes (and every required one), reads only outputs its end nodes answer, does not
pause for human input, and no chain of calls comes back to a workflow already on it (A → B → A)
or goes deeper than ``MAX_SUB_WORKFLOW_DEPTH``. Every problem is located on the draft's node."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import ValidationError

from shared.workflows import repository as repo
from shared.workflows.api import WorkflowProblem
from shared.workflows.configs import (
    MAX_SUB_WORKFLOW_DEPTH,
    EndConfig,
    StartConfig,
    SubWorkflowConfig,
    parse_config,
)
from shared.workflows.definition import WorkflowDocument

# A resolved call: (workflow id, version number, document), or a problem's (code, message).
Resolved = tuple[uuid.UUID, int, WorkflowDocument] | tuple[str, str]
# Loads the version a call names: (workflow id, version or None for the latest) → Resolved.
Loader = Callable[[uuid.UUID, int | None], Resolved]


def sub_workflow_nodes(document: WorkflowDocument) -> Iterator[tuple[str, SubWorkflowConfig]]:
    """The sub-workflow nodes whose configuration parses (the others are validation's problems),
    in document order, containers' children included."""
    for node in document.nodes:
        if node.type == "sub_workflow":
            try:
                config = parse_config(node.type, node.config)
            except ValidationError:
                continue
            assert isinstance(config, SubWorkflowConfig)
            yield node.id, config


class _Calls:
    """Resolves the versions sub-workflow nodes call, each once per check."""

    def __init__(self, load: Loader) -> None:
        self._load = load
        self._seen: dict[tuple[uuid.UUID, int | None], Resolved] = {}

    def resolve(self, config: SubWorkflowConfig) -> Resolved:
        try:
            target = uuid.UUID(config.workflow_id)
        except ValueError:
            return "invalid_workflow_id", f"{config.workflow_id!r} is not a workflow id"
        key = (target, config.version)
        if key not in self._seen:
            self._seen[key] = self._load(target, config.version)
        return self._seen[key]


def version_loader(conn: Any, tenant_id: uuid.UUID) -> Loader:
    """Loads called versions from the tenant's live workflows (PostgreSQL)."""

    def load(target: uuid.UUID, version: int | None) -> Resolved:
        workflow = repo.get_workflow(conn, tenant_id, target)
        if workflow is None:
            return "sub_workflow_not_found", f"Workflow {target} does not exist in this tenant"
        number = version if version is not None else workflow["published_version"]
        if number is None:
            return "sub_workflow_not_published", (f"Workflow {workflow['name']!r} has no published version: publish "
                                                  "it first (a sub-workflow runs a published version)")
        snapshot = repo.get_version(conn, tenant_id, target, number)
        if snapshot is None:
            return "sub_workflow_version_not_found", f"Workflow {workflow['name']!r} has no version {number}"
        return target, int(snapshot["number"]), WorkflowDocument.model_validate(snapshot["document"])

    return load


def sub_workflow_problems(conn: Any, tenant_id: uuid.UUID, workflow_id: uuid.UUID | None,
                          document: WorkflowDocument) -> list[WorkflowProblem]:
    """The problems of ``document``'s sub-workflow nodes (``workflow_id``: the workflow the
    document belongs to, which no call may come back to), its targets read from PostgreSQL."""
    return check_sub_workflows(version_loader(conn, tenant_id), workflow_id, document)


def check_sub_workflows(load: Loader, workflow_id: uuid.UUID | None,
                        document: WorkflowDocument) -> list[WorkflowProblem]:
    """The problems of ``document``'s sub-workflow nodes, the versions they call read by ``load``."""
    calls = _Calls(load)
    problems: list[WorkflowProblem] = []

    def add(node_id: str, field: str, code: str, message: str) -> None:
        problems.append(WorkflowProblem(node_id=node_id, field=field, code=code, message=message))

    for node_id, config in sub_workflow_nodes(document):
        if workflow_id is not None and _normal(config.workflow_id) == str(workflow_id):
            add(node_id, "config.workflow_id", "sub_workflow_cycle",
                f"the workflow calls itself: {workflow_id} → {workflow_id}")
            continue
        resolved = calls.resolve(config)
        if len(resolved) == 2:
            code, message = resolved
            if code != "invalid_workflow_id":  # reported by the document's validation
                add(node_id, "config.version" if code.endswith("version_not_found") else "config.workflow_id",
                    code, message)
            continue
        target, _, called = resolved
        _contract(add, node_id, config, called)
        found = _cycle(calls, [*([str(workflow_id)] if workflow_id else []), str(target)], called)
        if found is not None:
            code, message = found
            add(node_id, "config.workflow_id", code, message)
    return problems


def _contract(add: Any, node_id: str, config: SubWorkflowConfig, called: WorkflowDocument) -> None:
    """The inputs the node maps and the outputs it reads fit the called version."""
    variables: dict[str, Any] = {}
    outputs: set[str] = set()
    for node in called.nodes:
        try:
            parsed = parse_config(node.type, node.config)
        except ValidationError:
            continue
        if isinstance(parsed, StartConfig):
            variables = {variable.variable: variable for variable in parsed.variables}
        elif isinstance(parsed, EndConfig) and node.parent_id is None:
            outputs |= {output.variable for output in parsed.outputs}
        if node.type == "human_input":
            add(node_id, "config.workflow_id", "sub_workflow_pauses",
                f"The called workflow pauses for human input (node {node.id!r}); a sub-workflow runs inline "
                "and cannot pause")
    mapped = {binding.variable for binding in config.inputs}
    for index, binding in enumerate(config.inputs):
        if binding.variable not in variables:
            add(node_id, f"config.inputs[{index}].variable", "unknown_input",
                f"the called workflow takes no input {binding.variable!r}; it takes "
                f"{', '.join(variables) or 'no inputs'}")
    for name, variable in variables.items():
        if variable.required and variable.default is None and name not in mapped:
            add(node_id, "config.inputs", "missing_input", f"the called workflow requires the input {name!r}: map it")
    for index, output in enumerate(config.outputs):
        if output.variable not in outputs:
            add(node_id, f"config.outputs[{index}].variable", "unknown_output",
                f"the called workflow answers no output {output.variable!r}; it answers "
                f"{', '.join(sorted(outputs)) or 'none'}")


def _normal(workflow_id: str) -> str:
    """A workflow id as paths hold it (a UUID's canonical text; anything else as it is)."""
    try:
        return str(uuid.UUID(workflow_id))
    except ValueError:
        return workflow_id


def _cycle(calls: _Calls, path: list[str], document: WorkflowDocument) -> tuple[str, str] | None:
    """A call chain from ``document`` (the last workflow of ``path``) that comes back to a
    workflow on ``path`` or goes too deep: its (code, message); None when there is none."""
    if len(path) - 1 > MAX_SUB_WORKFLOW_DEPTH:
        return "sub_workflow_too_deep", (f"sub-workflows nest at most {MAX_SUB_WORKFLOW_DEPTH} deep: "
                                         + " → ".join(path))
    for _, config in sub_workflow_nodes(document):
        if _normal(config.workflow_id) in path:
            # Back to a workflow on the path, whatever its versions (the one being published has
            # none yet, or others than its draft).
            return "sub_workflow_cycle", ("the sub-workflows call each other in a cycle: "
                                          + " → ".join([*path, _normal(config.workflow_id)]))
        resolved = calls.resolve(config)
        if len(resolved) == 2:
            continue  # the called workflow's own publish reported it; at run time the node fails
        target, _, called = resolved
        found = _cycle(calls, [*path, str(target)], called)
        if found is not None:
            return found
    return None
