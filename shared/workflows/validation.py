"""Whole-document checks of a workflow, every problem reported at once with its location
(node id + field), and the check of a run's inputs against the start node's variables.

``validate_document`` answers the problems (an empty list: the document can run);
``check_document`` raises them as one 422 ``workflow_invalid``. The checks: the document
parses (shape and each node's configuration), one start, an end reachable from it, every node
reachable, no cycles, edges between existing nodes leaving by a handle their source has,
references (selectors and ``{{#node.field#}}`` templates) naming upstream nodes' declared
outputs or ``sys.*`` with compatible types, error-strategy defaults, and the size limits.

Containers (iteration, loop): children sit in an existing container, one level deep; edges
join nodes of one scope; each container's start child is where its children are reached from;
a child may read what its container gives it (``[container, "item"]``...), its upstream
siblings and whatever is upstream of the container, while a node outside reads only the
container's outputs, never its children's. Cycles are refused everywhere: repeating is a loop
container's work, round after round. An ``assigner`` changes the variables of the loop it is in
and, in a chatflow, the conversation variables.

Chatflows (``mode: chatflow``): ``answer`` nodes instead of end nodes (at least one reachable),
``sys.query``/``sys.conversation_id``/``sys.dialogue_count``/``sys.files`` and the declared
conversation variables (``["conversation", name]``, typed, with defaults of their type). A
workflow has none of these.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.validation import nul_paths
from shared.workflows.configs import (
    ERROR_OUTPUTS,
    TOOL_OUTPUTS,
    AgentNodeConfig,
    AnswerConfig,
    AssignerConfig,
    CodeConfig,
    Condition,
    DocumentExtractorConfig,
    EndConfig,
    HttpRequestConfig,
    HumanInputConfig,
    IfElseConfig,
    InputVariable,
    IterationConfig,
    KnowledgeRetrievalConfig,
    ListOperatorConfig,
    LlmConfig,
    LoopConfig,
    ParameterExtractorConfig,
    QuestionClassifierConfig,
    StartConfig,
    SubWorkflowConfig,
    TemplateConfig,
    ToolConfig,
    VariableAggregatorConfig,
    inner_outputs_of,
    iteration_output_type,
    outputs_of,
    parse_config,
)
from shared.workflows.definition import (
    CONTAINED_TYPES,
    CONTAINER_TYPES,
    CONVERSATION,
    ELSE_HANDLE,
    FAIL_BRANCH_HANDLE,
    MAX_DEFINITION_BYTES,
    NODE_TYPES,
    SOURCE_HANDLE,
    VARIABLE_NAME,
    Node,
    WorkflowDocument,
)
from shared.workflows.errors import WorkflowInputInvalid, WorkflowInvalid
from shared.workflows.human_input import field_value
from shared.workflows.variables import SYS, TEMPLATE_REFERENCE, sys_fields, template_references

# An agent node's agent: an id, or a built-in agent's slug (shared/agents/paths.py).
_AGENT_REF = re.compile(r"^([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
                        r"|builtin-[a-z0-9-]{1,60})$")

# if_else operators that compare numbers, and those that need a list value.
NUMERIC_OPERATORS = frozenset({"=", "≠", ">", "<", "≥", "≤"})
LIST_OPERATORS = frozenset({"in", "not in", "all of"})
_NUMBER_TEXT = re.compile(r"^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


@dataclass(frozen=True)
class Problem:
    """One reason a document cannot run. ``node_id`` None: the document as a whole (``field``
    then says where, e.g. ``edges[2].source``)."""

    node_id: str | None
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "field": self.field, "code": self.code, "message": self.message}


def validate_document(document: WorkflowDocument | Mapping[str, Any]) -> list[Problem]:
    """Every problem of ``document`` (a parsed document or its JSON), in document order."""
    return _validate(document)[1]


def check_document(document: WorkflowDocument | Mapping[str, Any]) -> WorkflowDocument:
    """The document, parsed; raises :class:`WorkflowInvalid` listing every problem."""
    parsed, problems = _validate(document)
    if problems or parsed is None:
        raise WorkflowInvalid([problem.as_dict() for problem in problems])
    return parsed


def _validate(document: WorkflowDocument | Mapping[str, Any]) -> tuple[WorkflowDocument | None, list[Problem]]:
    problems: list[Problem] = []
    if isinstance(document, WorkflowDocument):
        size = len(document.model_dump_json().encode())
    else:
        size = len(json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode())
    if size > MAX_DEFINITION_BYTES:
        problems.append(Problem(None, "", "definition_too_large",
                                f"the document is {size} bytes of JSON; the most is {MAX_DEFINITION_BYTES}"))
    if isinstance(document, WorkflowDocument):
        parsed = document
    else:
        unstorable = [_nul_problem(path, document) for path in nul_paths(document)]
        if unstorable:
            # Text that PostgreSQL cannot store: located here, before the model's own (unlocated) refusal.
            return None, problems + unstorable
        try:
            parsed = WorkflowDocument.model_validate(document)
        except ValidationError as exc:
            return None, problems + document_problems(exc, document)
    return parsed, problems + _Checker(parsed).run()


# -- locations of pydantic errors --------------------------------------------------------------
def field_path(parts: Iterable[Any]) -> str:
    """``("config", "prompt_template", 0, "text")`` → ``config.prompt_template[0].text``."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def document_problems(exc: ValidationError, raw: Any) -> list[Problem]:
    """A document's shape errors located: node id + field inside the node when the node has
    an id, else the path in the document (``edges[2].source``)."""
    problems: list[Problem] = []
    nodes = raw.get("nodes") if isinstance(raw, Mapping) else None
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        message = error.get("msg", "")
        code = "invalid_field"
        node_id: str | None = None
        field = field_path(loc)
        if loc[:1] in (("nodes",), ("edges",)) and len(loc) == 1 and error.get("type") == "too_long":
            code = f"too_many_{loc[0]}"
        elif loc[:1] == ("nodes",) and len(loc) >= 2 and isinstance(loc[1], int):
            item = nodes[loc[1]] if isinstance(nodes, list) and loc[1] < len(nodes) else None
            raw_id = item.get("id") if isinstance(item, Mapping) else None
            if isinstance(raw_id, str) and loc[2:3] != ("id",):
                node_id, field = raw_id, field_path(loc[2:])
            if loc[2:] == ("type",):
                code = "unknown_node_type"
                message = f"unknown node type {error.get('input')!r}; the types are {', '.join(NODE_TYPES)}"
        problems.append(Problem(node_id, field, code, message))
    return problems


def _nul_problem(path: tuple[str | int, ...], raw: Any) -> Problem:
    node_id: str | None = None
    field = field_path(path)
    nodes = raw.get("nodes") if isinstance(raw, Mapping) else None
    if path[:1] == ("nodes",) and len(path) >= 3 and isinstance(path[1], int) and isinstance(nodes, list) \
            and path[1] < len(nodes) and isinstance(nodes[path[1]], Mapping):
        raw_id = nodes[path[1]].get("id")
        if isinstance(raw_id, str) and "\x00" not in raw_id:
            node_id, field = raw_id, field_path(path[2:])
    return Problem(node_id, field.replace("\x00", "\\u0000"), "nul_character",
                   "holds a NUL (\\u0000) character, which text cannot store: remove it")


def _config_problems(node: Node, exc: ValidationError) -> list[Problem]:
    return [Problem(node.id, field_path(("config", *error.get("loc", ()))), "invalid_config", error.get("msg", ""))
            for error in exc.errors()]


# -- value types -------------------------------------------------------------------------------
def value_matches(value: Any, var_type: str) -> bool:
    """Whether a JSON value has the variable type ``var_type``."""
    if var_type.startswith("array["):
        return isinstance(value, list) and all(value_matches(item, var_type[6:-1]) for item in value)
    match var_type:
        case "string":
            return isinstance(value, str)
        case "number":
            # An int is finite however long (and math.isfinite overflows on one past a float's range).
            return isinstance(value, int | float) and not isinstance(value, bool) and (
                isinstance(value, int) or math.isfinite(value))
        case "boolean":
            return isinstance(value, bool)
        case "object":
            return isinstance(value, dict)
    return False


def _only_references(text: str) -> bool:
    return bool(TEMPLATE_REFERENCE.search(text)) and not TEMPLATE_REFERENCE.sub("", text).strip()


class _Checker:
    """The checks past the document's shape, on a parsed document."""

    def __init__(self, document: WorkflowDocument) -> None:
        self.document = document
        self.problems: list[Problem] = []
        self.nodes: dict[str, Node] = {}
        self.configs: dict[str, BaseModel] = {}
        # Output name → type (None: any) of each node whose configuration parsed.
        self.outputs: dict[str, dict[str, str | None]] = {}
        self.ancestors: dict[str, set[str]] = {}
        # Nodes a run can reach; an unreachable node (itself reported) has no meaningful upstream.
        self.reachable: set[str] = set()
        # Each node's scope: the container it is in (None: the top level).
        self.scope: dict[str, str | None] = {}
        self.chatflow = document.mode == "chatflow"
        self.sys_fields = sys_fields(document.mode)
        # A chatflow's conversation variables: name → type.
        self.conversation = {variable.name: variable.type for variable in document.conversation_variables}

    def add(self, node_id: str | None, field: str, code: str, message: str) -> None:
        self.problems.append(Problem(node_id, field, code, message))

    def run(self) -> list[Problem]:
        self._conversation_variables()
        self._nodes()
        self._containers()
        self._edges()
        self._structure()
        self._references()
        return self.problems

    # -- chatflows ------------------------------------------------------------------------------
    def _conversation_variables(self) -> None:
        declared = self.document.conversation_variables
        if declared and not self.chatflow:
            self.add(None, "conversation_variables", "conversation_variables_in_workflow",
                     "only a chatflow (mode \"chatflow\") has conversation variables; remove them or make the "
                     "document a chatflow")
            return
        seen: set[str] = set()
        for index, variable in enumerate(declared):
            field = f"conversation_variables[{index}]"
            if variable.name in seen:
                self.add(None, f"{field}.name", "duplicate_variable",
                         f"conversation variable {variable.name!r} is declared more than once")
            seen.add(variable.name)
            if variable.default is not None and not value_matches(variable.default, variable.type):
                self.add(None, f"{field}.default", "invalid_default",
                         f"the default of {variable.name!r} is not a value of its type {variable.type}")

    # -- nodes ---------------------------------------------------------------------------------
    def _nodes(self) -> None:
        for node in self.document.nodes:
            if node.id in self.nodes:
                self.add(node.id, "id", "duplicate_node_id", f"node id {node.id!r} is used by more than one node")
                continue
            self.nodes[node.id] = node
            try:
                config = parse_config(node.type, node.config)
            except ValidationError as exc:
                self.problems.extend(_config_problems(node, exc))
                continue
            self.configs[node.id] = config
            outputs: dict[str, str | None] = dict(outputs_of(node, config))
            if node.error_strategy != "fail":
                outputs.update({name: kind for name, kind in ERROR_OUTPUTS.items() if name not in outputs})
            self.outputs[node.id] = outputs
            self._node_rules(node, config)

    def _node_rules(self, node: Node, config: BaseModel) -> None:
        if node.type == "answer" and not self.chatflow:
            self.add(node.id, "type", "answer_in_workflow",
                     "an answer node replies in a chat: only a chatflow (mode \"chatflow\") has them; a workflow "
                     "answers with its end nodes")
        if node.type == "end" and self.chatflow:
            self.add(node.id, "type", "end_in_chatflow",
                     "a chatflow replies with answer nodes, not end nodes: replace it with an answer node")
        if node.type in ("start", "end", "answer", *CONTAINED_TYPES) and node.error_strategy != "fail":
            self.add(node.id, "error_strategy", "unsupported_error_strategy",
                     f"a {node.type} node cannot fail; its error_strategy must be \"fail\"")
        if node.error_strategy == "default_value":
            declared = outputs_of(node, config)
            for key, value in node.default_value.items():
                if key not in declared:
                    self.add(node.id, f"default_value.{key}", "unknown_default_output",
                             f"{key!r} is not an output of this node; its outputs are {', '.join(declared) or 'none'}")
                elif (expected := declared[key]) is not None and not value_matches(value, expected):
                    self.add(node.id, f"default_value.{key}", "invalid_default_value",
                             f"the default for {key!r} must be of type {expected}")
        match config:
            case StartConfig():
                self._unique(node, [v.variable for v in config.variables], "config.variables", "variable",
                             "duplicate_variable")
                for index, variable in enumerate(config.variables):
                    self._input_variable(node, index, variable)
            case EndConfig():
                self._unique(node, [o.variable for o in config.outputs], "config.outputs", "variable",
                             "duplicate_output")
            case CodeConfig():
                self._unique(node, [v.variable for v in config.variables], "config.variables", "variable",
                             "duplicate_variable")
                for name in config.outputs:
                    if not re.match(VARIABLE_NAME, name):
                        self.add(node.id, f"config.outputs.{name}", "invalid_output_name",
                                 "an output name is a letter or _ then letters, digits or _ (at most 64)")
            case TemplateConfig():
                self._unique(node, [v.variable for v in config.variables], "config.variables", "variable",
                             "duplicate_variable")
            case KnowledgeRetrievalConfig():
                for index, kb_id in enumerate(config.knowledge_base_ids):
                    try:
                        uuid.UUID(kb_id)
                    except ValueError:
                        self.add(node.id, f"config.knowledge_base_ids[{index}]", "invalid_knowledge_base_id",
                                 f"{kb_id!r} is not a knowledge base id (a UUID); pick one of the tenant's "
                                 "knowledge bases")
            case LlmConfig():
                if config.context.enabled and not config.context.variable_selector:
                    self.add(node.id, "config.context.variable_selector", "missing_context_variable",
                             "context is enabled: name the variable it takes (e.g. a knowledge retrieval result)")
            case IterationConfig():
                if not config.output_selector:
                    self.add(node.id, "config.output_selector", "missing_output_selector",
                             "name the output of a node inside the iteration that it collects for each item")
            case LoopConfig():
                self._unique(node, [v.label for v in config.loop_variables], "config.loop_variables", "label",
                             "duplicate_variable")
                for index, loop_variable in enumerate(config.loop_variables):
                    if loop_variable.value_type == "constant" and not value_matches(loop_variable.value,
                                                                                    loop_variable.var_type):
                        self.add(node.id, f"config.loop_variables[{index}].value", "invalid_loop_variable",
                                 f"the initial value of {loop_variable.label!r} must be a {loop_variable.var_type}")
            case ParameterExtractorConfig():
                self._unique(node, [p.name for p in config.parameters], "config.parameters", "name",
                             "duplicate_output")
            case QuestionClassifierConfig():
                if node.error_strategy == "default_value":
                    # Default values leave by "source", which a classifier does not have.
                    self.add(node.id, "error_strategy", "unsupported_error_strategy",
                             "a question classifier leaves by one of its classes; to handle its failure use "
                             "error_strategy \"fail_branch\"")
            case ListOperatorConfig():
                self._list_conditions(node, config)
            case HumanInputConfig():
                self._form(node, config)
            case SubWorkflowConfig():
                self._unique(node, [b.variable for b in config.inputs], "config.inputs", "variable",
                             "duplicate_variable")
                self._unique(node, [o.variable for o in config.outputs], "config.outputs", "variable",
                             "duplicate_output")
                try:
                    uuid.UUID(config.workflow_id)
                except ValueError:
                    self.add(node.id, "config.workflow_id", "invalid_workflow_id",
                             f"{config.workflow_id!r} is not a workflow id (a UUID); pick one of the tenant's "
                             "published workflows")
            case ToolConfig():
                self._tool(node, config)
            case AgentNodeConfig():
                if not _AGENT_REF.match(config.agent_id):
                    self.add(node.id, "config.agent_id", "invalid_agent_id",
                             f"{config.agent_id!r} is not an agent id (a UUID) nor a built-in agent's slug "
                             "(builtin-...); pick one of the tenant's published agents")
                if not config.prompt.strip():
                    self.add(node.id, "config.prompt", "missing_prompt",
                             "give the agent the message it answers (text with {{#node.field#}} references)")

    def _tool(self, node: Node, config: ToolConfig) -> None:
        """A tool node names a tool by reference; the fields it answers are distinct names that
        do not hide its own outputs. (Whether the tool exists and takes the arguments is checked
        against the tenant's tools when publishing.)"""
        from shared.tools.contract import ToolRef, ToolRefInvalid

        try:
            ToolRef.parse(config.tool)
        except ToolRefInvalid as exc:
            self.add(node.id, "config.tool", "invalid_tool", str(exc))
        self._unique(node, [o.variable for o in config.outputs], "config.outputs", "variable", "duplicate_output")
        for index, output in enumerate(config.outputs):
            if output.variable in TOOL_OUTPUTS:
                self.add(node.id, f"config.outputs[{index}].variable", "invalid_output_name",
                         f"{output.variable!r} is already an output of every tool node ({', '.join(TOOL_OUTPUTS)}); "
                         "read it as it is, or pick another name")

    def _form(self, node: Node, config: HumanInputConfig) -> None:
        """A human input form's fields: options only on select (and required there), defaults of
        the field's type, and a default for every required field when a timeout answers them."""
        for index, item in enumerate(config.fields):
            field = f"config.fields[{index}]"
            if item.type == "select" and not item.options:
                self.add(node.id, f"{field}.options", "invalid_options", "a select field needs its options")
            elif item.type != "select" and item.options:
                self.add(node.id, f"{field}.options", "invalid_options", "only select fields take options")
            if item.max_length is not None and item.type not in ("text", "paragraph"):
                self.add(node.id, f"{field}.max_length", "invalid_field",
                         "only text and paragraph fields take max_length")
            if item.default is not None:
                checked, problem = field_value(item, item.default)
                if problem is not None or checked != item.default:
                    self.add(node.id, f"{field}.default", "invalid_default",
                             f"the default {problem[1] if problem else 'must be a ' + item.var_type}")
            elif config.on_timeout == "default" and config.timeout_s is not None and item.required:
                self.add(node.id, f"{field}.default", "missing_default",
                         "on_timeout is \"default\": give this required field the default a timeout answers")

    def _list_conditions(self, node: Node, config: ListOperatorConfig) -> None:
        """Each filter's operator fits the items' type (a list of objects: its fields' types are
        unknown, so any operator)."""
        item_type = config.item_type
        for index, condition in enumerate(config.filter_by.conditions):
            expected = operator_types(condition.comparison_operator)
            if item_type != "object" and expected is not None and not _compatible(item_type, expected):
                self.add(node.id, f"config.filter_by.conditions[{index}].comparison_operator", "type_mismatch",
                         f"the items are of type {item_type}; {condition.comparison_operator!r} compares "
                         + " or ".join(_EXPECTED_NAMES.get(e, e) for e in expected))

    def _unique(self, node: Node, names: list[str], field: str, key: str, code: str) -> None:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                self.add(node.id, f"{field}[{index}].{key}", code, f"{name!r} is declared more than once")
            seen.add(name)

    def _input_variable(self, node: Node, index: int, variable: InputVariable) -> None:
        field = f"config.variables[{index}]"
        if variable.options and variable.type not in ("string", "number"):
            self.add(node.id, f"{field}.options", "invalid_options", "only string and number inputs take options")
        for option_index, option in enumerate(variable.options):
            if variable.type in ("string", "number") and not value_matches(option, variable.type):
                self.add(node.id, f"{field}.options[{option_index}]", "invalid_options",
                         f"an option of a {variable.type} input must be a {variable.type}")
        if variable.default is None:
            return
        if not value_matches(variable.default, variable.type):
            self.add(node.id, f"{field}.default", "invalid_default",
                     f"the default must be of the input's type, {variable.type}")
        elif variable.options and variable.default not in variable.options:
            self.add(node.id, f"{field}.default", "invalid_default", "the default must be one of the options")
        elif (variable.type == "string" and variable.max_length is not None
              and len(variable.default) > variable.max_length):
            self.add(node.id, f"{field}.default", "invalid_default",
                     f"the default is longer than max_length ({variable.max_length})")

    # -- containers ----------------------------------------------------------------------------
    def _containers(self) -> None:
        for node in self.nodes.values():
            self.scope[node.id] = node.parent_id
            parent = self.nodes.get(node.parent_id) if node.parent_id is not None else None
            if node.parent_id is not None:
                if parent is None:
                    self.add(node.id, "parent_id", "unknown_container", f"there is no node {node.parent_id!r}")
                elif parent.type not in CONTAINER_TYPES:
                    self.add(node.id, "parent_id", "not_a_container",
                             f"node {parent.id!r} is a {parent.type} node; nodes sit inside an iteration or a loop")
                elif node.type in CONTAINER_TYPES or parent.parent_id is not None:
                    self.add(node.id, "parent_id", "nested_container",
                             "a container cannot be inside another container; chain them instead")
                elif node.type in ("start", "end", "human_input"):
                    self.add(node.id, "parent_id", "not_allowed_in_container",
                             f"a {node.type} node belongs at the top level of the workflow, not inside a container")
            wanted = CONTAINED_TYPES.get(node.type)
            if wanted is not None and (parent is None or parent.type != wanted):
                self.add(node.id, "parent_id", "outside_its_container",
                         f"a {node.type} node belongs inside a {wanted} node (set parent_id to it)")
        for container in self.nodes.values():
            config = self.configs.get(container.id)
            if container.type not in CONTAINER_TYPES or not isinstance(config, IterationConfig | LoopConfig):
                continue
            start_type = CONTAINER_TYPES[container.type]
            start = self.nodes.get(config.start_node_id)
            if start is None or start.parent_id != container.id or start.type != start_type:
                self.add(container.id, "config.start_node_id", "invalid_start_node",
                         f"start_node_id must name the {start_type} node inside this {container.type}")
            for child in self.document.children(container.id):
                if child.type == start_type and child.id != config.start_node_id:
                    self.add(child.id, "type", "multiple_container_starts",
                             f"{container.type} {container.id!r} starts at {config.start_node_id!r}; it has one "
                             f"{start_type} node")

    def _inner_outputs(self, container_id: str) -> dict[str, str | None]:
        """What a container's children read under its id."""
        config = self.configs.get(container_id)
        if config is None:
            return {}
        item_type: str | None = None
        if isinstance(config, IterationConfig):
            _, source_type = self._quietly(self.nodes[container_id], config.iterator_selector)
            if source_type is not None and source_type.startswith("array["):
                item_type = source_type[6:-1]
        return inner_outputs_of(config, item_type)

    def _quietly(self, node: Node, selector: Sequence[str], inside: str | None = None) -> tuple[bool, str | None]:
        """``_resolve`` without recording problems (they are reported where the selector is)."""
        problems = self.problems
        self.problems = []
        try:
            return self._resolve(node, "", selector, inside)
        finally:
            self.problems = problems

    # -- edges ---------------------------------------------------------------------------------
    def _edges(self) -> None:
        fail_branches: set[str] = set()
        for index, edge in enumerate(self.document.edges):
            field = f"edges[{index}]"
            for end in ("source", "target"):
                node_id = getattr(edge, end)
                if node_id not in self.nodes:
                    self.add(None, f"{field}.{end}", "unknown_node", f"the edge's {end} {node_id!r} is no node")
            source, target = self.nodes.get(edge.source), self.nodes.get(edge.target)
            if target is not None and target.type in ("start", "iteration_start", "loop_start"):
                self.add(target.id, "", "start_has_incoming",
                         f"the {target.type} node cannot be the target of an edge ({field} comes from "
                         f"{edge.source!r})")
            if source is not None and target is not None and source.parent_id != target.parent_id:
                self.add(None, field, "edge_crosses_container",
                         f"the edge {edge.source!r} → {edge.target!r} crosses a container's boundary; edges join "
                         "nodes of the same container (or of the top level), and a container connects by its own "
                         "edges")
            if source is None:
                continue
            if source.type == "end":
                self.add(source.id, "", "end_has_outgoing",
                         f"an end node has no exits ({field} leaves it for {edge.target!r})")
                continue
            handles = self._handles(source)
            if edge.source_handle == FAIL_BRANCH_HANDLE and source.error_strategy == "fail_branch":
                fail_branches.add(source.id)
            elif handles is not None and edge.source_handle not in handles:
                self.add(None, f"{field}.source_handle", "invalid_source_handle",
                         f"node {source.id!r} has no exit {edge.source_handle!r}; its exits are "
                         f"{', '.join(repr(h) for h in handles)}"
                         + ("" if source.error_strategy == "fail_branch" else
                            " (\"fail-branch\" needs error_strategy \"fail_branch\")"))
        for node in self.nodes.values():
            if node.error_strategy == "fail_branch" and node.id not in fail_branches:
                self.add(node.id, "error_strategy", "missing_fail_branch",
                         "error_strategy is \"fail_branch\": connect an edge from its \"fail-branch\" exit")

    def _handles(self, node: Node) -> list[str] | None:
        """The handles ``node``'s edges may leave from (None: unknown, its config is invalid)."""
        handles: list[str]
        if node.type == "if_else":
            config = self.configs.get(node.id)
            if not isinstance(config, IfElseConfig):
                return None
            handles = [case.case_id for case in config.cases] + [ELSE_HANDLE]
        elif node.type == "question_classifier":
            classifier = self.configs.get(node.id)
            if not isinstance(classifier, QuestionClassifierConfig):
                return None
            handles = [item.id for item in classifier.classes]
        elif node.type == "human_input":
            form = self.configs.get(node.id)
            if not isinstance(form, HumanInputConfig):
                return None
            handles = [action.id for action in form.actions] or [SOURCE_HANDLE]
        else:
            handles = [SOURCE_HANDLE]
        if node.error_strategy == "fail_branch":
            handles.append(FAIL_BRANCH_HANDLE)
        return handles

    # -- graph ---------------------------------------------------------------------------------
    def _structure(self) -> None:
        successors: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        predecessors: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for edge in self.document.edges:
            # An edge across scopes is reported; it links nothing.
            if (edge.source in self.nodes and edge.target in self.nodes
                    and self.scope[edge.source] == self.scope[edge.target]):
                successors[edge.source].append(edge.target)
                predecessors[edge.target].append(edge.source)
        starts = [node for node in self.nodes.values() if node.type == "start"]
        ends = [node for node in self.nodes.values() if node.type == "end" and node.parent_id is None]
        if not starts:
            self.add(None, "nodes", "missing_start", "the workflow needs one start node")
        for extra in starts[1:]:
            self.add(extra.id, "type", "multiple_starts",
                     f"the workflow has more than one start node (the first is {starts[0].id!r})")
        answers = [node for node in self.nodes.values() if node.type == "answer"]
        if self.chatflow:
            if not answers:
                self.add(None, "nodes", "missing_answer", "the chatflow needs an answer node (it says what the chat "
                                                          "replies)")
        elif not ends:
            self.add(None, "nodes", "missing_end", "the workflow needs an end node (it says what the run answers)")
        if starts:
            reachable = self.reachable = _reach(starts[0].id, successors)
            for node_id in self.nodes:
                if node_id not in reachable and self.nodes[node_id].type != "start" and self.scope[node_id] is None:
                    self.add(node_id, "", "unreachable_node",
                             f"no path leads to it from the start node {starts[0].id!r}; connect it or remove it")
            if ends and not self.chatflow and not any(end.id in reachable for end in ends):
                self.add(None, "nodes", "no_reachable_end", "no end node can be reached from the start node")
        self._container_reach(successors)
        if self.chatflow and answers and starts and not any(answer.id in self.reachable for answer in answers):
            self.add(None, "nodes", "no_reachable_answer", "no answer node can be reached from the start node")
        for component in _cycles(list(self.nodes), successors):
            path = " → ".join([*component, component[0]])
            self.add(component[0], "", "cycle",
                     f"nodes {path} form a cycle; a workflow is a graph without cycles: to repeat steps, put them "
                     "in a loop node")
        # In a cycle a node is its own ancestor: the cycle is the problem reported, not this.
        self.ancestors = {node_id: _reach(node_id, predecessors) - {node_id} for node_id in self.nodes}
        # A child also runs after whatever runs before its container.
        for node_id, container in self.scope.items():
            if container is not None and container in self.nodes:
                self.ancestors[node_id] |= self.ancestors[container]

    def _container_reach(self, successors: Mapping[str, Sequence[str]]) -> None:
        """Each container's children are reached from its start child; they count as reachable
        when their container is."""
        for container in self.nodes.values():
            config = self.configs.get(container.id)
            if not isinstance(config, IterationConfig | LoopConfig):
                continue
            children = [child.id for child in self.document.children(container.id)]
            start = config.start_node_id
            reached = _reach(start, successors) if start in children else set()
            for child_id in children:
                if child_id not in reached and self.nodes[child_id].type not in CONTAINER_TYPES.values():
                    self.add(child_id, "", "unreachable_node",
                             f"no path leads to it from the start of {container.type} {container.id!r}; connect it "
                             "or remove it")
            if container.id in self.reachable:
                self.reachable |= {child_id for child_id in children if child_id in reached}

    # -- references ----------------------------------------------------------------------------
    def _references(self) -> None:
        # An iteration's output type follows the child output it collects (when not declared).
        for node_id, config in self.configs.items():
            if isinstance(config, IterationConfig) and config.output_type is None and config.output_selector:
                _, collected = self._quietly(self.nodes[node_id], config.output_selector, inside=node_id)
                self.outputs[node_id]["output"] = iteration_output_type(config, collected)
        for node_id, config in self.configs.items():
            node = self.nodes[node_id]
            for check in _reference_checks(config):
                self._check(node, *check)
            if isinstance(config, IfElseConfig):
                self._condition_values(node, [
                    (f"config.cases[{c}].conditions[{i}].value", condition.comparison_operator, condition.value)
                    for c, case in enumerate(config.cases) for i, condition in enumerate(case.conditions)])
            elif isinstance(config, ListOperatorConfig):
                self._condition_values(node, [
                    (f"config.filter_by.conditions[{i}].value", condition.comparison_operator, condition.value)
                    for i, condition in enumerate(config.filter_by.conditions)])
            elif isinstance(config, IterationConfig) and config.output_selector:
                if self.scope.get(config.output_selector[0]) != node.id and config.output_selector[0] in self.nodes:
                    self.add(node.id, "config.output_selector", "output_selector_not_child",
                             f"{'.'.join(config.output_selector)}: an iteration collects the output of a node "
                             "inside it, once per item")
                else:
                    self._check(node, "config.output_selector", config.output_selector, None, inside=node.id)
            elif isinstance(config, LoopConfig):
                for field, selector, expected in _condition_checks("config.break_conditions",
                                                                   config.break_conditions):
                    self._check(node, field, selector, expected, inside=node.id)
                self._condition_values(node, [
                    (f"config.break_conditions[{i}].value", condition.comparison_operator, condition.value)
                    for i, condition in enumerate(config.break_conditions)])
            elif isinstance(config, AssignerConfig):
                self._assignments(node, config)

    def _check(self, node: Node, field: str, selector: list[str], expected: tuple[str, ...] | None,
               inside: str | None = None) -> None:
        known, var_type = self._resolve(node, field, selector, inside)
        if known and var_type is not None and expected is not None and not _compatible(var_type, expected):
            self.add(node.id, field, "type_mismatch",
                     f"{'.'.join(selector)} is of type {var_type}; here it must be "
                     + " or ".join(_EXPECTED_NAMES.get(e, e) for e in expected))

    def _assignments(self, node: Node, config: AssignerConfig) -> None:
        loop = self.nodes.get(node.parent_id) if node.parent_id is not None else None
        loop_config = self.configs.get(loop.id) if loop is not None else None
        variables = ({v.label: v.var_type for v in loop_config.loop_variables}
                     if isinstance(loop_config, LoopConfig) else {})
        for index, item in enumerate(config.items):
            field = f"config.items[{index}].variable_selector"
            text = ".".join(item.variable_selector)
            head, name = item.variable_selector[0], item.variable_selector[-1]
            if head == CONVERSATION:
                if not self.chatflow:
                    self.add(node.id, field, "conversation_variable_unsupported",
                             f"{text}: only a chatflow has conversation variables; in a workflow an assigner changes "
                             "the variables of the loop it is in")
                    continue
                if len(item.variable_selector) != 2 or name not in self.conversation:
                    self.add(node.id, field, "unknown_conversation_variable",
                             f"{text}: the chatflow declares no conversation variable {name!r} (it has "
                             f"{', '.join(self.conversation) or 'none'})")
                    continue
                self._assignment(node, index, text, self.conversation[name], item)
                continue
            if loop is None or head != loop.id or len(item.variable_selector) != 2 or name not in variables:
                where = (f"the variables of loop {loop.id!r} ({', '.join(variables) or 'none'})"
                         if loop is not None and isinstance(loop_config, LoopConfig) else
                         "the variables of the loop it is in, and this node is in no loop")
                self.add(node.id, field, "not_a_loop_variable",
                         f"{text} is no variable this node can change: an assigner changes {where}, "
                         "as [loop_id, variable]")
                continue
            self._assignment(node, index, text, variables[name], item)

    def _assignment(self, node: Node, index: int, text: str, var_type: str, item: Any) -> None:
        problem = assignment_rule_problem(var_type, item.operation, item.input_type)
        if problem is None and item.input_type == "constant":
            value = item.value
            if item.operation == "set" and var_type == "object" and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            problem = assignment_value_problem(var_type, item.operation, value)
        if problem is not None:
            self.add(node.id, f"config.items[{index}]", "invalid_assignment", f"{text}: {problem}")

    def _resolve(self, node: Node, field: str, selector: Sequence[str],
                 inside: str | None = None) -> tuple[bool, str | None]:
        """Whether ``selector`` names something ``node`` can read, and that thing's type (None:
        any). A problem is recorded when it does not. ``inside``: read as from within that
        container, after all its children (an iteration's output, a loop's break conditions)."""
        text = ".".join(selector)
        if len(selector) < 2:
            self.add(node.id, field, "invalid_selector",
                     f"{text or 'an empty selector'}: a selector names a node and one of its outputs")
            return False, None
        head, name, *path = selector
        if head == SYS:
            if name not in self.sys_fields:
                chat = " (sys.query, sys.conversation_id, sys.dialogue_count and sys.files are a chatflow's)"
                self.add(node.id, field, "unknown_sys_variable",
                         f"{text}: sys has {', '.join(sorted(self.sys_fields))}"
                         + ("" if self.chatflow else chat))
                return False, None
            sys_type = self.sys_fields[name]
            if sys_type == "object":
                # sys.user_variables.<name>: names the agent declares, unknown to the document.
                return True, ("string" if len(path) == 1 else None) if path else sys_type
            if path and not (sys_type.startswith("array[") and len(path) == 1 and path[0].isdigit()):
                self.add(node.id, field, "invalid_path", f"{text}: sys.{name} is a {sys_type}; it has no fields")
                return False, None
            return True, sys_type[6:-1] if path else sys_type
        if head == CONVERSATION:
            if not self.chatflow:
                self.add(node.id, field, "conversation_variable_unsupported",
                         f"{text}: only a chatflow (mode \"chatflow\") has conversation variables")
                return False, None
            if name not in self.conversation:
                self.add(node.id, field, "unknown_conversation_variable",
                         f"{text}: the chatflow declares no conversation variable {name!r} (it has "
                         f"{', '.join(self.conversation) or 'none'})")
                return False, None
            declared: str | None = self.conversation[name]
            for part in path:
                if declared is None or declared == "object":
                    declared = None
                elif declared.startswith("array[") and part.isdigit():
                    declared = declared[6:-1]
                else:
                    self.add(node.id, field, "invalid_path", f"{text}: conversation.{name} has no field {part!r}")
                    return False, None
            return True, declared
        container = inside if inside is not None else self.scope.get(node.id)
        if head == node.id and inside is None:
            self.add(node.id, field, "self_reference", f"{text}: a node cannot read its own outputs")
            return False, None
        if head not in self.nodes:
            self.add(node.id, field, "unknown_node_reference", f"{text}: there is no node {head!r}")
            return False, None
        outputs: Mapping[str, str | None] | None
        if container is not None and head == container:
            # What the container gives its children: an iteration's item and index, a loop's variables.
            outputs = self._inner_outputs(head)
        else:
            head_scope = self.scope.get(head)
            if head_scope is not None and head_scope != container:
                self.add(node.id, field, "container_child_reference",
                         f"{text}: node {head!r} is inside container {head_scope!r}; from outside it, read the "
                         "container's outputs")
                return False, None
            if inside is not None:
                upstream = self.ancestors.get(inside, set()) | {child.id for child in self.document.children(inside)}
            else:
                upstream = self.ancestors.get(node.id, set())
            if node.id in self.reachable and head not in upstream:
                self.add(node.id, field, "not_upstream",
                         f"{text}: node {head!r} does not run before this one (no path leads from it here)")
                return False, None
            outputs = self.outputs.get(head)
        if outputs is None:
            return False, None  # its own configuration problem is reported
        if name not in outputs:
            self.add(node.id, field, "unknown_output",
                     f"{text}: node {head!r} has no output {name!r}; its outputs are {', '.join(outputs) or 'none'}")
            return False, None
        var_type = outputs[name]
        walked = [head, name]
        for part in path:
            if var_type is None or var_type == "object":
                var_type = None
            elif var_type.startswith("array[") and part.isdigit():
                var_type = var_type[6:-1]
            else:
                self.add(node.id, field, "invalid_path",
                         f"{text}: {'.'.join(walked)} is of type {var_type}; it has no field {part!r}")
                return False, None
            walked.append(part)
        return True, var_type

    def _condition_values(self, node: Node, conditions: list[tuple[str, str, Any]]) -> None:
        """Each (field, operator, value): the value fits the operator."""
        for field, operator, value in conditions:
            if operator in LIST_OPERATORS:
                if not isinstance(value, list):
                    self.add(node.id, field, "invalid_condition_value", f"{operator!r} takes a list of values")
            elif isinstance(value, list):
                self.add(node.id, field, "invalid_condition_value", f"{operator!r} takes one value, not a list")
            elif operator in NUMERIC_OPERATORS and not (
                    value_matches(value, "number")
                    or (isinstance(value, str) and (_NUMBER_TEXT.match(value) or _only_references(value)))):
                self.add(node.id, field, "invalid_condition_value",
                         f"{operator!r} compares numbers: give a number or a {{{{#node.field#}}}} reference")


_EXPECTED_NAMES = {"array": "an array"}


def _compatible(var_type: str, expected: tuple[str, ...]) -> bool:
    return any(var_type == e or (e == "array" and var_type.startswith("array[")) for e in expected)


# (field, selector, the types it may have: None any)
_Check = tuple[str, list[str], tuple[str, ...] | None]


def _templates(field: str, text: str) -> Iterator[_Check]:
    for selector in template_references(text):
        yield field, selector, None


def _reference_checks(config: BaseModel) -> Iterator[_Check]:
    """Every selector and template reference in a configuration, with the types it may have."""
    match config:
        case EndConfig():
            for i, output in enumerate(config.outputs):
                yield f"config.outputs[{i}].value_selector", output.value_selector, None
        case LlmConfig():
            for i, message in enumerate(config.prompt_template):
                yield from _templates(f"config.prompt_template[{i}].text", message.text)
            if config.context.variable_selector:
                yield ("config.context.variable_selector", config.context.variable_selector,
                       ("string", "array[object]"))
        case KnowledgeRetrievalConfig():
            yield "config.query_variable_selector", config.query_variable_selector, ("string",)
        case IfElseConfig():
            for c, case in enumerate(config.cases):
                yield from _condition_checks(f"config.cases[{c}].conditions", case.conditions)
        case CodeConfig() | TemplateConfig():
            for i, binding in enumerate(config.variables):
                yield f"config.variables[{i}].value_selector", binding.value_selector, None
        case HttpRequestConfig():
            yield from _templates("config.url", config.url)
            for kind in ("headers", "params"):
                for i, pair in enumerate(getattr(config, kind)):
                    yield from _templates(f"config.{kind}[{i}].key", pair.key)
                    yield from _templates(f"config.{kind}[{i}].value", pair.value)
            if isinstance(config.body.data, str):
                yield from _templates("config.body.data", config.body.data)
            else:
                for i, body_field in enumerate(config.body.data):
                    yield from _templates(f"config.body.data[{i}].key", body_field.key)
                    yield from _templates(f"config.body.data[{i}].value", body_field.value)
            yield from _templates("config.authorization.api_key", config.authorization.api_key)
        case VariableAggregatorConfig():
            for i, selector in enumerate(config.variables):
                yield f"config.variables[{i}]", selector, (config.output_type,)
            for g, group in enumerate(config.groups):
                for i, selector in enumerate(group.variables):
                    yield f"config.groups[{g}].variables[{i}]", selector, (group.output_type,)
        case IterationConfig():
            # Its output_selector is read from inside it (see _references).
            yield "config.iterator_selector", config.iterator_selector, ("array",)
        case LoopConfig():
            # Its break conditions are read from inside it (see _references).
            for i, variable in enumerate(config.loop_variables):
                if variable.value_type == "variable":
                    yield f"config.loop_variables[{i}].value", variable.value, (variable.var_type,)
        case AssignerConfig():
            # The variables changed are checked apart (see _assignments); here, where values come from.
            for i, item in enumerate(config.items):
                if item.input_type == "variable" and isinstance(item.value, list):
                    yield f"config.items[{i}].value", item.value, None

        case QuestionClassifierConfig():
            yield "config.query_variable_selector", config.query_variable_selector, ("string",)
            yield from _templates("config.instruction", config.instruction)
        case ParameterExtractorConfig():
            yield "config.query", config.query, ("string",)
            yield from _templates("config.instruction", config.instruction)
        case ListOperatorConfig():
            yield "config.variable", config.variable, (config.var_type,)
            for i, condition in enumerate(config.filter_by.conditions):
                yield from _value_templates(f"config.filter_by.conditions[{i}]", condition.value)
            yield from _templates("config.extract_by.serial", config.extract_by.serial)
        case DocumentExtractorConfig():
            yield ("config.variable_selector", config.variable_selector,
                   ("array[object]",) if config.is_array_file else ("object",))
        case HumanInputConfig():
            yield from _templates("config.form_content", config.form_content)
        case SubWorkflowConfig():
            for i, binding in enumerate(config.inputs):
                yield f"config.inputs[{i}].value_selector", binding.value_selector, None
        case AnswerConfig():
            yield from _templates("config.answer", config.answer)
        case ToolConfig():
            for name, argument in config.arguments.items():
                if argument.type == "selector":
                    yield f"config.arguments.{name}.value", argument.value, None
                elif argument.type == "template":
                    yield from _templates(f"config.arguments.{name}.value", argument.value)
        case AgentNodeConfig():
            yield from _templates("config.prompt", config.prompt)
            for name, text in config.inputs.items():
                yield from _templates(f"config.inputs.{name}", text)


def _condition_checks(where: str, conditions: Sequence[Condition]) -> Iterator[_Check]:
    """The references of if/else conditions (a case's, a loop's break conditions), with the
    types each operator takes."""
    for i, condition in enumerate(conditions):
        field = f"{where}[{i}]"
        operator = condition.comparison_operator
        expected: tuple[str, ...] | None = None
        if operator in NUMERIC_OPERATORS:
            expected = ("number",)
        elif operator in ("start with", "end with"):
            expected = ("string",)
        elif operator in ("contains", "not contains"):
            expected = ("string", "array")
        elif operator == "all of":
            expected = ("array",)
        yield f"{field}.variable_selector", condition.variable_selector, expected
        values = condition.value if isinstance(condition.value, list) else [condition.value]
        for v, value in enumerate(values):
            if isinstance(value, str):
                suffix = f"[{v}]" if isinstance(condition.value, list) else ""
                yield from _templates(f"{field}.value{suffix}", value)


def operator_types(operator: str) -> tuple[str, ...] | None:
    """The types a comparison operator takes on its variable's side (None: any)."""
    if operator in NUMERIC_OPERATORS:
        return ("number",)
    if operator in ("start with", "end with"):
        return ("string",)
    if operator in ("contains", "not contains"):
        return ("string", "array")
    if operator == "all of":
        return ("array",)
    return None


def _value_templates(field: str, value: Any) -> Iterator[_Check]:
    """The references in a condition's value (a string, or each string of a list)."""
    values = value if isinstance(value, list) else [value]
    for index, item in enumerate(values):
        if isinstance(item, str):
            suffix = f"[{index}]" if isinstance(value, list) else ""
            yield from _templates(f"{field}.value{suffix}", item)


def _reach(origin: str, links: Mapping[str, Sequence[str]]) -> set[str]:
    seen = {origin}
    queue = deque([origin])
    while queue:
        for neighbour in links.get(queue.popleft(), ()):
            if neighbour not in seen:
                seen.add(neighbour)
                queue.append(neighbour)
    return seen


def _cycles(node_ids: list[str], successors: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """The strongly connected components that hold a cycle (Tarjan's, iterative), each in
    document order."""
    order = {node_id: position for position, node_id in enumerate(node_ids)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in node_ids:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(successors[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node_id, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                elif child in on_stack:
                    low[node_id] = min(low[node_id], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node_id])
            if low[node_id] == index[node_id]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node_id:
                        break
                if len(component) > 1 or node_id in successors[node_id]:
                    components.append(sorted(component, key=order.__getitem__))
    return sorted(components, key=lambda component: order[component[0]])


# -- run inputs --------------------------------------------------------------------------------
def input_schema(document: WorkflowDocument) -> list[InputVariable]:
    """The run inputs the document takes: its start node's variables (none without a start)."""
    for node in document.nodes:
        if node.type == "start":
            try:
                config = parse_config(node.type, node.config)
            except ValidationError as exc:
                raise WorkflowInvalid([problem.as_dict() for problem in _config_problems(node, exc)]) from None
            assert isinstance(config, StartConfig)
            return list(config.variables)
    return []


def validate_inputs(document: WorkflowDocument, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """A run's inputs checked against the start node's variables: types, required, options,
    max_length; unknown inputs refused; defaults applied (an absent optional input without a
    default is None). Raises :class:`WorkflowInputInvalid` naming every field that is wrong."""
    variables = input_schema(document)
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, Mapping):
        raise WorkflowInputInvalid([{"field": "inputs", "type": "type_error",
                                     "message": "give the inputs as an object of name: value"}])
    declared = {variable.variable: variable for variable in variables}
    errors: list[dict[str, str]] = []
    for name in inputs:
        if name not in declared:
            errors.append({"field": f"inputs.{name}", "type": "unknown_input",
                           "message": f"the workflow takes no input {name!r}; it takes "
                                      f"{', '.join(declared) or 'no inputs'}"})
    values: dict[str, Any] = {}
    for variable in variables:
        value = inputs.get(variable.variable)
        if value is None:
            if variable.default is not None:
                values[variable.variable] = variable.default
            elif variable.required:
                errors.append({"field": f"inputs.{variable.variable}", "type": "missing",
                               "message": "this input is required"})
            else:
                values[variable.variable] = None
            continue
        value, problem = _input_value(variable, value)
        if problem is not None:
            errors.append({"field": f"inputs.{variable.variable}", "type": problem[0], "message": problem[1]})
        else:
            values[variable.variable] = value
    if errors:
        raise WorkflowInputInvalid(errors)
    return values


def _input_value(variable: InputVariable, value: Any) -> tuple[Any, tuple[str, str] | None]:
    if variable.type == "number" and isinstance(value, str) and _NUMBER_TEXT.match(value):
        # A number given as text (form fields send text), as Dify accepts it.
        number = float(value)
        value = int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    if not value_matches(value, variable.type):
        return value, ("type_error", f"must be of type {variable.type}")
    if variable.options and value not in variable.options:
        return value, ("not_an_option", f"must be one of {', '.join(repr(o) for o in variable.options)}")
    if variable.type == "string" and variable.max_length is not None and len(value) > variable.max_length:
        return value, ("too_long", f"must be at most {variable.max_length} characters")
    return value, None


# -- assignments (the assigner node; Dify's variable assigner v2 rules) -----------------------
_ARITHMETIC = frozenset({"+=", "-=", "*=", "/="})
_ARRAY_OPERATIONS = frozenset({"append", "extend", "remove-first", "remove-last"})
_VALUELESS = frozenset({"clear", "remove-first", "remove-last"})
# What ``clear`` sets a variable of each type to.
EMPTY_VALUES: dict[str, Any] = {"string": "", "number": 0, "boolean": False, "object": {}}


def empty_value(var_type: str) -> Any:
    return [] if var_type.startswith("array[") else EMPTY_VALUES.get(var_type)


def assignment_rule_problem(var_type: str, operation: str, input_type: str) -> str | None:
    """Why ``operation`` with a ``input_type`` input cannot change a variable of ``var_type``
    (None: it can)."""
    is_array = var_type.startswith("array[")
    supported = (operation in ("over-write", "clear")
                 or (operation == "set" and var_type in ("object", "string", "number", "boolean"))
                 or (operation in _ARITHMETIC and var_type == "number")
                 or (operation in _ARRAY_OPERATIONS and is_array))
    if not supported:
        return f"{operation!r} does not apply to a {var_type} variable"
    if operation in _VALUELESS:
        return None
    if input_type == "variable" and (operation == "set" or operation in _ARITHMETIC):
        return f"{operation!r} takes a constant value, not a variable"
    if input_type == "constant" and is_array:
        return f"{operation!r} on an array variable takes its value from a variable"
    return None


def assignment_value_problem(var_type: str, operation: str, value: Any) -> str | None:
    """Why ``value`` cannot be used by ``operation`` on a variable of ``var_type`` (None: it can)."""
    if operation in _VALUELESS:
        return None
    expected = var_type[6:-1] if var_type.startswith("array[") and operation == "append" else var_type
    if not value_matches(value, expected):
        return f"{operation!r} on a {var_type} variable takes a value of type {expected}"
    if operation == "/=" and value == 0:
        return "a variable cannot be divided by 0"
    return None


def assigned_value(var_type: str, operation: str, current: Any, value: Any) -> Any:
    """The variable's value after ``operation`` (a rule-abiding one: see the checks above)."""
    if operation in ("over-write", "set"):
        return value
    if operation == "clear":
        return empty_value(var_type)
    if current is None:
        current = empty_value(var_type)
    match operation:
        case "append":
            return [*current, value]
        case "extend":
            return [*current, *value]
        case "+=":
            return current + value
        case "-=":
            return current - value
        case "*=":
            return current * value
        case "/=":
            return current / value
        case "remove-first":
            return current[1:]
        case "remove-last":
            return current[:-1]
    raise ValueError(f"unknown operation {operation!r}")
