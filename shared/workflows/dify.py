"""Dify app DSL import and export (docs/workflows.md, "Dify import and export").

``import_dify`` reads a Dify app export (``kind: app``, ``app.mode: workflow``, DSL 0.1.x to
0.5.x) or a bare ``{nodes, edges}`` graph and maps each node with its whole configuration. A
node type Stratus does not run yet, a chatflow, or a feature with no Stratus meaning (file
inputs, Jinja2 prompts, JavaScript code...) is one 422 naming every such node: nothing is
created. What Dify keeps that Stratus has no field for and that changes nothing a run does is
dropped and listed in ``warnings``; never silently.

``export_dify`` writes the DSL Dify's importer takes (version 0.3.1). What Stratus holds that
Dify has no field for (a node timeout, a retrieval mode, a response size cap...) travels in
the node data under ``stratus`` as JSON-pointer → value pairs, which Dify ignores and
``import_dify`` applies, so an exported document imports back equal.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from shared.tools.contract import ToolSpec
from shared.validation import MAX_JSON_DEPTH
from shared.workflows.configs import (
    ARRAY_TYPE,
    ERROR_OUTPUTS,
    MAX_LOOP_COUNT,
    MAX_PARALLEL_ITEMS,
    TOOL_OUTPUTS,
    AgentNodeConfig,
    AnswerConfig,
    AssignerConfig,
    CodeConfig,
    ComparisonOperator,
    DocumentExtractorConfig,
    EndConfig,
    HttpRequestConfig,
    HumanInputConfig,
    IfElseConfig,
    IterationConfig,
    KnowledgeRetrievalConfig,
    ListOperatorConfig,
    LlmConfig,
    LoopConfig,
    ModelRef,
    ParameterExtractorConfig,
    QuestionClassifierConfig,
    StartConfig,
    SubWorkflowConfig,
    TemplateConfig,
    ToolConfig,
    VariableAggregatorConfig,
    outputs_of,
    parse_config,
)
from shared.workflows.definition import (
    CONTAINER_TYPES,
    NODE_ID,
    SOURCE_HANDLE,
    VAR_TYPES,
    VARIABLE_NAME,
    Node,
    RetryPolicy,
    WorkflowDocument,
)
from shared.workflows.errors import DslImportFailed, DslImportUnsupported
from shared.workflows.validation import Problem, document_problems, empty_value, value_matches
from shared.workflows.variables import TEMPLATE_REFERENCE, template_references

# Larger files are refused before parsing (a document holds at most 1 MB of JSON; the YAML of
# one, with Dify's canvas fields, stays well under this).
MAX_DSL_CHARS = 2_000_000
EXPORT_VERSION = "0.3.1"
# The provider an exported model reference names: the tenant's model of that name.
STRATUS_PROVIDER = "stratus"
DEFAULT_MODEL_NAME = "default"
# The node data key carrying what Dify has no field for (JSON pointer → value).
EXTENSION_KEY = "stratus"

DIFY_TYPES: dict[str, str] = {
    "start": "start",
    "end": "end",
    "llm": "llm",
    "knowledge-retrieval": "knowledge_retrieval",
    "if-else": "if_else",
    "code": "code",
    "template-transform": "template",
    "http-request": "http_request",
    "variable-aggregator": "variable_aggregator",
    # The aggregator's name before Dify 0.6.13 (today's "assigner" is another node).
    "variable-assigner": "variable_aggregator",
    "iteration": "iteration",
    "iteration-start": "iteration_start",
    "loop": "loop",
    "loop-start": "loop_start",
    "loop-end": "loop_end",
    "assigner": "assigner",
    "question-classifier": "question_classifier",
    "parameter-extractor": "parameter_extractor",
    "list-operator": "list_operator",
    "document-extractor": "document_extractor",
    "human-input": "human_input",
    # A tool whose provider is a workflow of the tenant (provider_type: workflow) is a
    # sub-workflow; another, a tool of the tenant's provider of the same name (or a Stratus
    # built-in of the same name), is a tool node; others are refused.
    "tool": "tool",
    # Only an agent node Stratus exported (a published agent of the tenant); Dify's own agent
    # nodes (a strategy, model and tools defined inline) are refused.
    "agent": "agent",
    "answer": "answer",
}
STRATUS_TYPES: dict[str, str] = {stratus: dify for dify, stratus in DIFY_TYPES.items() if dify != "variable-assigner"}
STRATUS_TYPES["sub_workflow"] = "tool"
# How an exported agent node says it is Stratus's (Dify's agent nodes name a strategy plugin).
STRATUS_AGENT_STRATEGY = "stratus"
# Outputs every Dify tool node has (Dify's ``files`` has no Stratus counterpart).
DIFY_TOOL_OUTPUTS = frozenset({*TOOL_OUTPUTS, "files"})
# Start variable types: Dify → Stratus.
INPUT_TYPES = {"text-input": "string", "paragraph": "string", "select": "string", "number": "number",
               "checkbox": "boolean", "json_object": "object", "file": "object", "file-list": "array[object]"}
# What a Dify file input becomes: a file reference (an object), what document extractors read.
FILE_REFERENCE = '{url | s3_key | content_base64, filename, mime_type}'
# Parameter extractor types: Dify → Stratus ("select" is a string with options; "bool" the old boolean).
PARAMETER_TYPES = {"string": "string", "select": "string", "number": "number", "integer": "number",
                   "bool": "boolean", "boolean": "boolean", "array[string]": "array[string]",
                   "array[number]": "array[number]", "array[integer]": "array[number]",
                   "array[boolean]": "array[boolean]", "array[object]": "array[object]"}
LIST_TYPES = ("array[string]", "array[number]", "array[boolean]", "array[object]")
# Dify's names for value types Stratus has under another name.
TYPE_ALIASES = {"integer": "number", "array[integer]": "array[number]"}
MODES_LATER = {"chat": "chat apps are not workflows; Stratus imports Dify workflow and chatflow apps (mode: workflow, "
                       "advanced-chat)",
               "agent-chat": "agent apps are not workflows; Stratus imports Dify workflow and chatflow apps (mode: "
                             "workflow, advanced-chat)",
               "completion": "text generators are not workflows; Stratus imports Dify workflow and chatflow apps "
                             "(mode: workflow, advanced-chat)"}
# Dify's app modes Stratus imports, and the document mode each becomes.
APP_MODES = {"workflow": "workflow", "advanced-chat": "chatflow"}
STRATUS_APP_MODES = {stratus: dify for dify, stratus in APP_MODES.items()}
# What Dify's chatflow prompts call the message's files (sys.files in later releases).
_USER_FILES = "{{#userinput.files#}}"
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
# Node data fields every type has, or that only Dify's canvas reads.
_COMMON_KEYS = frozenset({"type", "title", "desc", "selected", "error_strategy", "default_value", "retry_config",
                          "version", EXTENSION_KEY, "isInIteration", "isInLoop", "iteration_id", "loop_id",
                          "height", "width", "_connectedSourceHandleIds", "_connectedTargetHandleIds"})
_TYPE_KEYS: dict[str, frozenset[str]] = {
    "start": frozenset({"variables"}),
    "end": frozenset({"outputs"}),
    "llm": frozenset({"model", "prompt_template", "prompt_config", "memory", "context", "vision", "structured_output",
                      "structured_output_enabled", "reasoning_format"}),
    "knowledge_retrieval": frozenset({"query_variable_selector", "dataset_ids", "retrieval_mode",
                                      "multiple_retrieval_config", "single_retrieval_config",
                                      "metadata_filtering_mode", "metadata_filtering_conditions",
                                      "metadata_model_config"}),
    "if_else": frozenset({"cases", "conditions", "logical_operator"}),
    "code": frozenset({"code", "code_language", "variables", "outputs", "dependencies"}),
    "template": frozenset({"template", "variables"}),
    "http_request": frozenset({"method", "url", "authorization", "headers", "params", "body", "timeout",
                               "ssl_verify"}),
    "variable_aggregator": frozenset({"output_type", "variables", "advanced_settings"}),
    # iterator_input_type and startNodeType only inform Dify's editor.
    "iteration": frozenset({"start_node_id", "iterator_selector", "output_selector", "output_type", "is_parallel",
                            "parallel_nums", "error_handle_mode", "flatten_output", "iterator_input_type",
                            "startNodeType"}),
    "iteration_start": frozenset(),
    # Dify's loop node reads no error_handle_mode (its editor writes one).
    "loop": frozenset({"start_node_id", "loop_count", "loop_variables", "break_conditions", "logical_operator",
                       "error_handle_mode", "outputs"}),
    "loop_start": frozenset(),
    "loop_end": frozenset(),
    "assigner": frozenset({"items", "assigned_variable_selector", "input_variable_selector", "write_mode"}),
    # ``topics`` and ``instructions``: what Dify's editor wrote before ``instruction``.
    "question_classifier": frozenset({"query_variable_selector", "model", "classes", "instruction", "instructions",
                                      "topics", "memory", "vision"}),
    "parameter_extractor": frozenset({"query", "model", "parameters", "instruction", "reasoning_mode", "memory",
                                      "vision"}),
    "list_operator": frozenset({"variable", "var_type", "item_var_type", "filter_by", "order_by", "limit",
                                "extract_by"}),
    "document_extractor": frozenset({"variable_selector", "is_array_file", "output_image"}),
    "human_input": frozenset({"form_content", "inputs", "user_actions", "timeout", "timeout_unit",
                              "delivery_methods"}),
    # What Dify's editor writes of a tool's provider and schema (only the workflow and its
    # parameters mean something here).
    "sub_workflow": frozenset({"provider_id", "provider_type", "provider_name", "tool_name", "tool_label",
                               "tool_parameters", "tool_configurations", "tool_node_version", "output_schema",
                               "paramSchemas", "params", "is_team_authorization", "plugin_unique_identifier"}),
    # The same, and the tool's description and credentials (the Stratus provider holds its own).
    "tool": frozenset({"provider_id", "provider_type", "provider_name", "tool_name", "tool_label",
                       "tool_parameters", "tool_configurations", "tool_node_version", "output_schema",
                       "paramSchemas", "params", "is_team_authorization", "plugin_unique_identifier",
                       "tool_description", "credential_id", "provider_icon"}),
    "agent": frozenset({"agent_strategy_provider_name", "agent_strategy_name", "agent_strategy_label",
                        "agent_parameters", "agent_id", "agent_inputs", "output_schema", "plugin_unique_identifier",
                        "memory", "tool_node_version"}),
    # ``variables``: a list Dify's answer node keeps empty.
    "answer": frozenset({"answer", "variables"}),
}
# Dify's human input timeout: 36 hours unless the node says otherwise.
DIFY_FORM_TIMEOUT_S = 36 * 3600
# Dify's canvas: a container's children sit above it, and its start node is fixed in place.
CHILD_Z_INDEX = 1002
CONTAINER_Z_INDEX = 1
_START_CANVAS_TYPES = {"iteration_start": "custom-iteration-start", "loop_start": "custom-loop-start"}


@dataclass(frozen=True)
class ModelSubstitution:
    """An LLM node whose Dify model the tenant has no model of that name for."""

    node_id: str
    requested: str  # "provider/name", as the Dify file names it
    used: str | None  # the model used instead; None: the tenant's default chat model

    def as_dict(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "requested": self.requested, "used": self.used}


@dataclass(frozen=True)
class ImportResult:
    """The mapped document (it may still have problems an unfinished Dify draft has:
    :func:`shared.workflows.validation.validate_document` lists them), the app's name and
    description ("" for a bare graph), the model substitutions and what was dropped."""

    document: WorkflowDocument
    name: str
    description: str
    substitutions: list[ModelSubstitution] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


ModelNames = Callable[[str], bool] | set[str] | frozenset[str]
# A workflow of the tenant a Dify workflow tool names (by provider id or name): its id and the
# outputs its published version answers; None: the tenant has none of that id or name.
WorkflowTargets = Callable[[str], tuple[str, list[str]] | None]
# The tenant's tools (listed once, when a Dify tool node asks): what a Dify tool node may name.
ToolTargets = Callable[[], Sequence[ToolSpec]]


# -- import ------------------------------------------------------------------------------------
def import_dify(content: str, *, model_names: ModelNames, default_model: str | None,
                workflows: WorkflowTargets | None = None, tools: ToolTargets | None = None) -> ImportResult:
    """A Dify app DSL (or a bare graph) as a Stratus document. ``model_names`` says whether the
    tenant has a chat model of a name; ``default_model`` is the tenant's default chat model
    (None: leave the node on the default, whichever it is at run time); ``workflows`` finds the
    tenant's workflow a Dify workflow tool names (None: such tools are refused); ``tools`` lists
    the tenant's tools, which other Dify tool nodes name by provider and tool (None: such tools
    are refused). Raises
    :class:`DslImportUnsupported` (422 ``workflow_import_unsupported``) naming every node or
    feature Stratus does not run yet, :class:`DslImportFailed` (422 ``workflow_import_invalid``)
    when the file is not a Dify workflow."""
    data = _load(content)
    exists = model_names if callable(model_names) else model_names.__contains__
    context = _Context(exists, default_model, workflows, tools)
    if data.get("kind") not in (None, "app"):
        raise DslImportFailed(f"The file's kind is {data['kind']!r}: only Dify app exports (kind: app) are imported")
    name = description = ""
    if "app" in data or data.get("kind") == "app":
        graph, name, description = _app_graph(data, context)
    elif "nodes" in data:
        graph = data  # the bare {nodes, edges} graph of Dify's builder tests
    else:
        raise DslImportFailed("This is not a Dify app export (it has no app: section) nor a workflow graph "
                              "(no nodes:); export the app from Dify with \"Export DSL\" and import that file")
    document = _graph(graph, context)
    if context.unsupported:
        raise DslImportUnsupported(
            "Stratus does not run these yet: " + "; ".join(
                f"{what} ({'node' if len(ids) == 1 else 'nodes'} {', '.join(ids)})"
                for what, ids in context.unsupported_by_kind().items())
            + ". Nothing was imported: remove or replace them in Dify and export again",
            problems=[problem.as_dict() for problem in context.unsupported])
    if context.invalid:
        raise DslImportFailed(
            f"The Dify file is malformed: {_where(context.invalid[0])}{context.invalid[0].message}"
            + (f" (and {len(context.invalid) - 1} more)" if len(context.invalid) > 1 else ""),
            problems=[problem.as_dict() for problem in context.invalid])
    assert document is not None
    return ImportResult(document, name, description, context.substitutions, context.warnings)


def _where(problem: Problem) -> str:
    where = ".".join(part for part in (problem.node_id, problem.field) if part)
    return f"{where}: " if where else ""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """yaml's safe loader (libyaml's when the wheel has it: several times faster) with dates
    left as text: a document holds JSON."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _load(content: str) -> dict[str, Any]:
    if not isinstance(content, str):
        raise DslImportFailed("Give the Dify file's YAML as text")
    if len(content) > MAX_DSL_CHARS:
        raise DslImportFailed(f"The file has {len(content)} characters; the most imported is {MAX_DSL_CHARS}",
                              details={"max_chars": MAX_DSL_CHARS})
    try:
        # Before building anything: aliases (``*ref``: a few lines of them make a value of any
        # size) and nesting deeper than a document may be (deep nesting overflows the parser's stack).
        depth = 0
        for event in yaml.parse(content, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                raise DslImportFailed(f"The file uses a YAML alias (*{event.anchor}) at line "
                                      f"{event.start_mark.line + 1}: aliases are not accepted; write the value out")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_JSON_DEPTH:
                    raise DslImportFailed(f"The file nests deeper than {MAX_JSON_DEPTH} levels (line "
                                          f"{event.start_mark.line + 1}); a Dify app never does",
                                          details={"max_depth": MAX_JSON_DEPTH})
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        loader = _Loader(content)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DslImportFailed(f"The file is not valid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise DslImportFailed(f"The file is not valid YAML: {exc}") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise DslImportFailed(f"The file holds a value Stratus cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise DslImportFailed("The file is not a Dify app export: its YAML is not a mapping of app:, workflow:...")
    return _plain(data, "")


def _plain(value: Any, where: str) -> Any:
    """``value`` as JSON holds it (a document is JSON): keys as text, no binary, sets or
    non-finite numbers, which YAML can write and a document cannot hold."""
    if isinstance(value, dict):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, str | int | float):
                raise DslImportFailed(f"The key {key!r} at {where or 'the top'} is not text")
            plain[str(key)] = _plain(item, f"{where}.{key}" if where else str(key))
        return plain
    if isinstance(value, list):
        return [_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise DslImportFailed(f"The value at {where} is {value}: a document holds finite numbers only")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise DslImportFailed(f"The value at {where} is YAML {type(value).__name__}, which a workflow cannot hold")


def _app_graph(data: Mapping[str, Any], context: _Context) -> tuple[Mapping[str, Any], str, str]:
    app = data.get("app")
    if not isinstance(app, Mapping):
        raise DslImportFailed("The file has no app: section (name, mode...); export the app from Dify again")
    mode = app.get("mode")
    if isinstance(mode, str) and mode in MODES_LATER:
        raise DslImportUnsupported(f"This Dify app's mode is {mode!r}: {MODES_LATER[mode]}",
                                   details={"mode": mode})
    if not isinstance(mode, str) or mode not in APP_MODES:
        raise DslImportFailed(f"The app's mode is {mode!r}; a Dify workflow app has mode: workflow, a chatflow "
                              "mode: advanced-chat")
    context.mode = APP_MODES[mode]
    version = data.get("version") or "0.1.0"
    match = _VERSION.match(str(version)) if isinstance(version, str | int | float) else None
    if match is None:
        raise DslImportFailed(f"The DSL version {version!r} is not a version like 0.3.1")
    if int(match.group(1)) != 0:
        raise DslImportUnsupported(f"DSL version {version} is newer than Stratus reads (0.x); export the app "
                                   "from a Dify release that writes a 0.x DSL", details={"version": str(version)})
    if int(match.group(2)) > 5:
        context.warn(None, f"DSL version {version} is newer than the versions Stratus was checked against "
                           "(0.1 to 0.5); review the imported nodes")
    workflow = data.get("workflow")
    if not isinstance(workflow, Mapping) or not isinstance(workflow.get("graph"), Mapping):
        raise DslImportFailed("The app has no workflow.graph (nodes and edges); export the app from Dify again")
    names = [str(v.get("name")) for v in _list(workflow.get("environment_variables")) if isinstance(v, Mapping)]
    if names:
        context.warn(None, f"environment variables ({', '.join(names)}) are not imported: Stratus has none yet; "
                           "validation reports each reference to them")
    conversation = _list(workflow.get("conversation_variables"))
    if context.mode == "chatflow":
        context.conversation_variables = _conversation_variables(conversation, context)
    elif conversation:
        context.warn(None, "conversation variables are a chatflow's; this workflow app's were not imported")
    if _mapping(_mapping(workflow.get("features")).get("file_upload")).get("enabled"):
        context.warn(None, "file upload is not imported: Stratus workflows take no files yet")
    name = app.get("name")
    text = app.get("description")
    return workflow["graph"], str(name) if name is not None else "", str(text) if text is not None else ""


class _Context:
    """What an import collects: warnings, substitutions and the problems that stop it."""

    def __init__(self, model_exists: Callable[[str], bool], default_model: str | None,
                 workflows: WorkflowTargets | None = None, tools: ToolTargets | None = None,
                 exporting: bool = False) -> None:
        self.model_exists = model_exists
        self.default_model = default_model
        # None while exporting: a workflow tool maps back to the id it names.
        self.workflows = workflows
        # Exporting: a tool maps back to the reference it names.
        self.exporting = exporting
        self._tools = tools
        self._tool_specs: list[ToolSpec] | None = None
        self.warnings: list[str] = []
        self.substitutions: list[ModelSubstitution] = []
        self.unsupported: list[Problem] = []
        self._unsupported_kinds: list[tuple[str, str]] = []
        self.invalid: list[Problem] = []
        # The document's mode (an advanced-chat app: chatflow) and its conversation variables.
        self.mode = "workflow"
        self.conversation_variables: list[dict[str, Any]] = []

    def warn(self, node_id: str | None, message: str) -> None:
        self.warnings.append(f"node {node_id}: {message}" if node_id else message)

    def refuse(self, node_id: str, field: str, code: str, what: str) -> None:
        """``what`` Stratus does not run yet (e.g. "iteration nodes") is in node ``node_id``."""
        self.unsupported.append(Problem(node_id, field, code, f"Stratus does not run {what} yet"))
        self._unsupported_kinds.append((what, node_id))

    def unsupported_by_kind(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for what, node_id in self._unsupported_kinds:
            if node_id not in grouped.setdefault(what, []):
                grouped[what].append(node_id)
        return grouped

    def malformed(self, node_id: str | None, field: str, message: str) -> None:
        self.invalid.append(Problem(node_id, field, "invalid_dsl", message))

    def tool_specs(self) -> list[ToolSpec]:
        """The tenant's tools, listed on first use (the built-ins alone when no lister was given)."""
        if self._tool_specs is None:
            from shared.tools.builtins import builtin_specs
            from shared.tools.contract import DEFAULT_TIMEOUT_S

            self._tool_specs = list(self._tools()) if self._tools is not None else builtin_specs(DEFAULT_TIMEOUT_S)
        return self._tool_specs


def _graph(graph: Mapping[str, Any], context: _Context) -> WorkflowDocument | None:
    raw_nodes, raw_edges = graph.get("nodes"), graph.get("edges")
    if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list | None):
        context.malformed(None, "graph", "the graph's nodes (and edges) must be lists")
        return None
    nodes: list[dict[str, Any]] = []
    dropped: set[str] = set()
    for index, raw in enumerate(raw_nodes):
        node = _node(index, raw, context, dropped)
        if node is not None:
            nodes.append(node)
    edges = _edges(raw_edges or [], context, dropped)
    if context.unsupported or context.invalid:
        return None
    _declare_tool_outputs(nodes)
    _place(nodes, edges)
    raw = {"mode": context.mode, "conversation_variables": context.conversation_variables, "nodes": nodes,
           "edges": edges}
    try:
        return WorkflowDocument.model_validate(raw)
    except ValidationError as exc:
        context.invalid.extend(document_problems(exc, raw))
        return None


def _conversation_variables(raw: list[Any], context: _Context) -> list[dict[str, Any]]:
    """A chatflow's conversation variables: name, type (Dify's ``value_type``), default
    (``value``) and description."""
    declared = []
    for index, item in enumerate(raw):
        where = f"workflow.conversation_variables[{index}]"
        if not isinstance(item, Mapping):
            context.malformed(None, where, "a conversation variable must be a mapping with name and value_type")
            continue
        name = _text(item.get("name"))
        dify_type = _text(item.get("value_type")) or "string"
        kind = TYPE_ALIASES.get(dify_type, dify_type)
        if kind not in VAR_TYPES:
            context.refuse(name or where, f"{where}.value_type", "unsupported_feature",
                           f"conversation variables of type {dify_type}")
            continue
        if not re.match(VARIABLE_NAME, name):
            context.malformed(None, f"{where}.name", f"conversation variable name {name!r} must be letters, digits "
                                                     "and _, not starting with a digit")
            continue
        default = item.get("value")
        if kind == "number" and isinstance(default, str):
            default = _number(default)
        if default is not None and not value_matches(default, kind):
            context.warn(None, f"conversation variable {name}: its value {default!r} is not a {kind}; it starts "
                               "empty instead")
            default = None
        if default == empty_value(kind) and type(default) is type(empty_value(kind)):
            default = None  # the type's empty value, which an absent default means
        declared.append({"name": name, "type": kind, "default": default,
                         "description": _bounded(name, "description", item.get("description"), 1000, context)})
    return declared


def _node(index: int, raw: Any, context: _Context, dropped: set[str]) -> dict[str, Any] | None:
    where = f"nodes[{index}]"
    if not isinstance(raw, Mapping):
        context.malformed(None, where, "a node must be a mapping with id and data")
        return None
    node_id = _text(raw.get("id"))
    data = raw.get("data")
    if not isinstance(data, Mapping):
        context.malformed(node_id or None, "data" if node_id else where,
                          "the node has no data (its type and configuration)")
        return None
    dify_type = data.get("type")
    if raw.get("type") == "custom-note" or dify_type == "":
        if node_id:
            dropped.add(node_id)
        context.warn(node_id or None, "a canvas note; notes are not imported")
        return None
    if not node_id or not re.match(NODE_ID, node_id):
        context.malformed(None, f"{where}.id", f"node id {raw.get('id')!r} must be 1 to 64 letters, digits, _ or -")
        return None
    kind = DIFY_TYPES.get(dify_type) if isinstance(dify_type, str) else None
    if kind == "tool" and data.get("provider_type") == "workflow":
        kind = "sub_workflow"
    if kind == "agent" and data.get("agent_strategy_provider_name") != STRATUS_AGENT_STRATEGY:
        context.refuse(node_id, "data.type", "unsupported_node_type",
                       "Dify agent nodes (their strategy, model and tools are defined in the node; a Stratus agent "
                       "node calls a published agent of the tenant: create the agent, then use an agent node)")
        return None
    if kind is None:
        context.refuse(node_id, "data.type", "unsupported_node_type", f"{dify_type} nodes")
        return None
    # A container's child: the canvas's parentId, else what the node data says.
    parent = _text(raw.get("parentId")) or _text(data.get("iteration_id")) or _text(data.get("loop_id")) or None
    size = None
    if kind in CONTAINER_TYPES:
        width, height = _number(raw.get("width", data.get("width"))), _number(raw.get("height", data.get("height")))
        if width is not None and height is not None and width >= 0 and height >= 0:
            size = {"width": float(width), "height": float(height)}
    return _node_from_dify(node_id, kind, data, raw.get("position"), context, parent, size)


def _node_from_dify(node_id: str, kind: str, data: Mapping[str, Any], position: Any,
                    context: _Context, parent_id: str | None = None,
                    size: dict[str, float] | None = None) -> dict[str, Any]:
    """One node as Stratus holds it (its config canonical: every field, as its model dumps it)."""
    config = _CONFIG_FROM_DIFY[kind](node_id, data, context)
    for key, value in data.items():
        if key not in _COMMON_KEYS and key not in _TYPE_KEYS[kind] and not str(key).startswith("_") \
                and not _empty(value):
            context.warn(node_id, f"Dify field {key!r} has no Stratus equivalent and was dropped")
    node: dict[str, Any] = {
        "id": node_id, "type": kind,
        "title": _bounded(node_id, "title", data.get("title"), 200, context),
        "description": _bounded(node_id, "description", data.get("desc"), 2000, context),
        "config": config,
        "position": _position(position),
        "parent_id": parent_id,
        "size": size,
        "timeout_s": None,
        "retry": _retry(node_id, data.get("retry_config"), context),
        "error_strategy": _error_strategy(node_id, data.get("error_strategy"), context),
        "default_value": _default_values(node_id, data.get("default_value"), context),
    }
    node["config"] = _canonical(kind, node["config"])
    extension = data.get(EXTENSION_KEY)
    if extension is not None:
        _apply_extension(node, extension, context)
        node["config"] = _canonical(kind, node["config"])
    return node


def _canonical(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config as its model dumps it (every field), so equal configs are equal dicts; left
    as it is when it does not parse (validation then locates its problems)."""
    try:
        return parse_config(kind, config).model_dump(mode="json", by_alias=True)
    except ValidationError:
        return config


def _edges(raw_edges: list[Any], context: _Context, dropped: set[str]) -> list[dict[str, Any]]:
    edges: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for index, raw in enumerate(raw_edges):
        if not isinstance(raw, Mapping):
            context.malformed(None, f"edges[{index}]", "an edge must be a mapping with source and target")
            continue
        source, target = _text(raw.get("source")), _text(raw.get("target"))
        handle = _text(raw.get("sourceHandle")) or SOURCE_HANDLE
        if source in dropped or target in dropped:
            continue
        if not source or not target:
            context.malformed(None, f"edges[{index}]", "an edge needs a source and a target node id")
            continue
        if (source, handle, target) in seen:
            context.warn(None, f"the edge {source} ({handle}) → {target} is repeated; imported once")
            continue
        seen.add((source, handle, target))
        edges.append({"source": source, "target": target, "source_handle": handle})
    return edges


# -- common node fields ------------------------------------------------------------------------
def _text(value: Any) -> str:
    """A name or id YAML may have read as a number (``1:``, ``id: 17``)."""
    if isinstance(value, bool) or value is None:
        return ""
    return str(value) if isinstance(value, str | int | float) else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _empty(value: Any) -> bool:
    """Nothing set (``vision: {enabled: false, configs: {variable_selector: []}}`` included)."""
    if isinstance(value, dict):
        return all(_empty(item) for item in value.values())
    if isinstance(value, list):
        return all(_empty(item) for item in value)
    return value is None or value is False or value == ""


def _bounded(node_id: str, name: str, value: Any, limit: int, context: _Context) -> str:
    text = value if isinstance(value, str) else ""
    if len(text) > limit:
        context.warn(node_id, f"the {name} is longer than {limit} characters; cut to {limit}")
        text = text[:limit]
    return text


def _position(value: Any) -> dict[str, float] | None:
    position = _mapping(value)
    x, y = _number(position.get("x")), _number(position.get("y"))
    if x is None or y is None:
        return None
    return {"x": float(x), "y": float(y)}


def _number(value: Any) -> int | float | None:
    """A finite number (YAML may give text such as "0.7")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return None
    if isinstance(value, int) and -(2**1000) < value < 2**1000:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def _clamp(node_id: str, name: str, value: Any, low: float, high: float, context: _Context,
           integer: bool = False) -> Any:
    number = _number(value)
    if number is None:
        if value is not None:
            context.warn(node_id, f"{name} {value!r} is not a number; the default is used")
        return None
    bounded = min(max(number, low), high)
    if bounded != number:
        context.warn(node_id, f"{name} {number} is outside {low:g}..{high:g}; {bounded:g} is used")
    return int(bounded) if integer else bounded


def _retry(node_id: str, value: Any, context: _Context) -> dict[str, int]:
    retry = _mapping(value)
    interval = _clamp(node_id, "retry_interval", retry.get("retry_interval", 1000), 0, 60_000, context, True)
    policy = {"max_attempts": 1, "interval_ms": 1000 if interval is None else interval}
    if retry.get("retry_enabled", retry.get("enabled")):
        retries = _clamp(node_id, "max_retries", retry.get("max_retries", 0), 0, 9, context, True)
        policy["max_attempts"] = 1 + (retries or 0)
    if _mapping(retry.get("exponential_backoff")).get("enabled"):
        context.warn(node_id, "exponential backoff between retries is not supported; retries wait retry_interval")
    return policy


def _error_strategy(node_id: str, value: Any, context: _Context) -> str:
    match value:
        case None | "" | "none" | "fail":
            return "fail"
        case "fail-branch":
            return "fail_branch"
        case "default-value":
            return "default_value"
    context.malformed(node_id, "data.error_strategy", f"unknown error_strategy {value!r}")
    return "fail"


def _default_values(node_id: str, value: Any, context: _Context) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for index, item in enumerate(_list(value)):
        if not isinstance(item, Mapping) or not _text(item.get("key")):
            context.malformed(node_id, f"data.default_value[{index}]", "a default value has a key, type and value")
            continue
        kind, raw = str(item.get("type", "string")), item.get("value")
        if kind == "array[file]" or kind == "file":
            context.refuse(node_id, f"data.default_value[{index}]", "unsupported_type", "file values")
            continue
        if isinstance(raw, str) and kind != "string":
            # Dify's editor keeps numbers and JSON as text; its runtime converts them the same way.
            converted = _number(raw) if kind == "number" else _json(raw)
            if converted is None:
                context.warn(node_id, f"the default for {item['key']!r} is not a valid {kind}; kept as text")
            else:
                raw = converted
        defaults[_text(item["key"])] = raw
    return defaults


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _var_type(value: Any) -> str | None:
    kind = TYPE_ALIASES.get(value, value) if isinstance(value, str) else None
    return kind if kind in VAR_TYPES else None


def _selector(value: Any) -> list[str]:
    return [_text(part) for part in value] if isinstance(value, list) else []


def _bindings(value: Any) -> list[dict[str, Any]]:
    return [{"variable": _text(item.get("variable")), "value_selector": _selector(item.get("value_selector"))}
            for item in _list(value) if isinstance(item, Mapping)]


# -- each node type's config: Dify → Stratus ---------------------------------------------------
def _start_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    variables = []
    for index, raw in enumerate(_list(data.get("variables"))):
        if not isinstance(raw, Mapping):
            context.malformed(node_id, f"data.variables[{index}]", "an input variable must be a mapping")
            continue
        name = _text(raw.get("variable"))
        dify_type = raw.get("type", "text-input")
        kind = INPUT_TYPES.get(dify_type) if isinstance(dify_type, str) else None
        if kind is None:
            context.refuse(node_id, f"data.variables[{index}].type", "unsupported_input_type",
                           f"{dify_type} inputs")
            continue
        options = [option for option in _list(raw.get("options")) if isinstance(option, str | int | float)]
        if options and dify_type != "select":
            context.warn(node_id, f"the options of the {dify_type} input {name!r} were dropped (only select "
                                  "inputs have options)")
            options = []
        required = bool(raw.get("required", False))
        default = _input_default(node_id, name, kind, raw.get("default"), required, context)
        for key in ("placeholder", "json_schema"):
            if not _empty(raw.get(key)):
                context.warn(node_id, f"the {key} of input {name!r} has no Stratus equivalent and was dropped")
        if raw.get("hide"):
            context.warn(node_id, f"input {name!r} is hidden in Dify; Stratus inputs are never hidden")
        max_length = _number(raw.get("max_length"))
        if dify_type in ("file", "file-list"):
            # A file-list's max_length counts files, not characters: dropped with the upload settings.
            max_length = None
            context.warn(node_id, f"the {dify_type} input {name!r} takes "
                                  + ("a file reference" if dify_type == "file" else "a list of file references")
                                  + f" {FILE_REFERENCE} (its allowed types, upload methods and limits were dropped)")
        variables.append({
            "variable": name, "label": _text(raw.get("label")), "type": kind, "required": required,
            "default": default, "options": options,
            "max_length": int(max_length) if max_length and max_length >= 1 else None,
            "description": _text(raw.get("description")) or _text(raw.get("hint")),
        })
    return {"variables": variables}


def _input_default(node_id: str, name: str, kind: str, value: Any, required: bool, context: _Context) -> Any:
    if value is None or (value == "" and (required or kind != "string")):
        # Dify's editor writes "" for "no default".
        return None
    if kind == "number" and isinstance(value, str):
        converted: Any = _number(value)
    elif kind == "object" and isinstance(value, str):
        converted = _json(value)
    elif kind == "boolean" and isinstance(value, str):
        converted = {"true": True, "false": False}.get(value.lower())
    else:
        converted = value
    if converted is None:
        context.warn(node_id, f"the default {value!r} of input {name!r} is not a {kind}; dropped")
    return converted


def _end_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    outputs = []
    for item in _list(data.get("outputs")):
        if not isinstance(item, Mapping):
            continue
        declared = item.get("value_type")
        value_type = _var_type(declared)
        if declared is not None and value_type is None:
            context.warn(node_id, f"output {item.get('variable')!r} declares type {declared!r}, which Stratus does "
                                  "not have; the declaration was dropped (the value is passed as it is)")
        outputs.append({"variable": _text(item.get("variable")),
                        "value_selector": _selector(item.get("value_selector")), "value_type": value_type})
    return {"outputs": outputs}


def _model_from_dify(node_id: str, value: Any, context: _Context) -> dict[str, Any]:
    """A node's ``model`` (llm, question classifier, parameter extractor) as a ModelRef."""
    model = _mapping(value)
    params = _mapping(model.get("completion_params"))
    reference: dict[str, Any] = {
        "name": _model_name(node_id, model, context),
        "temperature": _clamp(node_id, "temperature", params.get("temperature"), 0, 2, context),
        "top_p": _clamp(node_id, "top_p", params.get("top_p"), 0, 1, context),
        "max_tokens": _clamp(node_id, "max_tokens", params.get("max_tokens"), 1, 32_768, context, True),
        "stop": [],
    }
    stop = params.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in _list(stop) if isinstance(s, str)]
    if len(stops) > 4:
        context.warn(node_id, f"only the first 4 stop sequences are kept ({len(stops)} given)")
    reference["stop"] = stops[:4]
    extra = [key for key, value in params.items()
             if key not in ("temperature", "top_p", "max_tokens", "stop") and value is not None]
    if extra:
        context.warn(node_id, f"completion parameters {', '.join(map(str, extra))} have no Stratus equivalent "
                              "and were dropped")
    return reference


def _llm_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    reference = _model_from_dify(node_id, data.get("model"), context)
    template = data.get("prompt_template")
    # Dify's completion-mode models take one prompt (a mapping), chat models a list of messages.
    raw_messages = [{**template, "role": "user"}] if isinstance(template, Mapping) else _list(template)
    messages = []
    for index, message in enumerate(raw_messages):
        if not isinstance(message, Mapping):
            context.malformed(node_id, f"data.prompt_template[{index}]", "a prompt message must be a mapping")
            continue
        if message.get("edition_type") == "jinja2":
            context.refuse(node_id, f"data.prompt_template[{index}].edition_type", "unsupported_feature",
                           "Jinja2 prompt messages (its prompts use {{#node.field#}} references)")
        messages.append({"role": message.get("role", "user"), "text": _text(message.get("text"))})
    context_settings = _mapping(data.get("context"))
    structured = _mapping(data.get("structured_output"))
    schema = structured.get("schema")
    enabled = bool(data.get("structured_output_enabled") or structured.get("enabled"))
    if enabled and not isinstance(schema, Mapping):
        context.warn(node_id, "structured output is enabled without a schema; it was turned off")
        enabled = False
    if _mapping(data.get("vision")).get("enabled"):
        context.warn(node_id, "vision (image inputs) was turned off: Stratus workflows take no files yet")
    if data.get("reasoning_format") not in (None, "tagged"):
        # "tagged" (the default) leaves a reasoning model's <think> part in the text.
        context.warn(node_id, f"reasoning_format {data.get('reasoning_format')!r} was dropped: Stratus has no "
                              "separate reasoning output")
    memory = _mapping(data.get("memory"))
    if memory and context.mode == "chatflow":
        # Dify gives a chatflow's LLM with memory the user's message as its last prompt message.
        query = _text(memory.get("query_prompt_template")) or "{{#sys.query#}}"
        if _USER_FILES in query:
            query = query.replace(_USER_FILES, "")
            context.warn(node_id, "the message's files ({{#userinput.files#}}) were dropped from its query prompt: "
                                  "chat messages carry no files yet")
        messages.append({"role": "user", "text": query})
        if _mapping(memory.get("window")).get("enabled") is not False:
            context.warn(node_id, "memory (the conversation's past turns given to the model) is not imported: the "
                                  "model gets the prompt and the user's message only")
    # ``memory`` (conversation history) only exists in chatflows: a workflow never had any.
    return {
        "model": reference,
        "prompt_template": messages,
        "context": {"enabled": bool(context_settings.get("enabled")),
                    "variable_selector": _selector(context_settings.get("variable_selector"))},
        "structured_output": {"enabled": enabled, "schema": dict(schema) if isinstance(schema, Mapping) else {}},
    }


def _model_name(node_id: str, model: Mapping[str, Any], context: _Context) -> str | None:
    provider, name = _text(model.get("provider")), _text(model.get("name"))
    if provider == STRATUS_PROVIDER and name == DEFAULT_MODEL_NAME:
        return None
    if name and (context.model_exists(name) or name == context.default_model):
        return name
    context.substitutions.append(ModelSubstitution(node_id, f"{provider}/{name}", context.default_model))
    return context.default_model


def _knowledge_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    dataset_ids = [_text(kb) for kb in _list(data.get("dataset_ids"))]
    opaque = [kb for kb in dataset_ids if not _is_uuid(kb)]
    if opaque:
        context.warn(node_id, f"dataset ids {', '.join(opaque)} are encrypted by Dify's export "
                              "(DSL_EXPORT_ENCRYPT_DATASET_ID); choose the tenant's knowledge bases instead")
    retrieval: dict[str, Any] = {}
    if data.get("retrieval_mode") == "single":
        context.warn(node_id, "single retrieval (a model picks one dataset) became a search of every listed "
                              "knowledge base")
    else:
        settings = _mapping(data.get("multiple_retrieval_config"))
        top_k = _clamp(node_id, "top_k", settings.get("top_k"), 1, 50, context, True)
        if top_k is not None:
            retrieval["top_k"] = top_k
        retrieval["score_threshold"] = _clamp(node_id, "score_threshold", settings.get("score_threshold"), 0, 1,
                                              context)
        mode = settings.get("reranking_mode", "reranking_model")
        retrieval["rerank"] = bool(settings.get("reranking_enable", True)) and mode == "reranking_model"
        weight = _number(_mapping(_mapping(settings.get("weights")).get("vector_setting")).get("vector_weight"))
        if weight is not None and 0 <= weight <= 1:
            retrieval["semantic_weight"] = weight
    if data.get("metadata_filtering_mode") not in (None, "disabled"):
        context.warn(node_id, "metadata filtering was dropped: Stratus searches every document of the knowledge "
                              "bases")
    return {"query_variable_selector": _selector(data.get("query_variable_selector")),
            "knowledge_base_ids": dataset_ids, "retrieval": retrieval}


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


_OPERATORS = frozenset(get_args(ComparisonOperator))


def _if_else_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    raw_cases = _list(data.get("cases"))
    if not raw_cases and "conditions" in data:
        # Before Dify 0.8 (DSL 0.1.2) an if/else held one list of conditions: its "true" branch.
        raw_cases = [{"case_id": "true", "logical_operator": data.get("logical_operator", "and"),
                      "conditions": data.get("conditions")}]
    cases = []
    for case_index, case in enumerate(raw_cases):
        if not isinstance(case, Mapping):
            context.malformed(node_id, f"data.cases[{case_index}]", "a case must be a mapping")
            continue
        conditions = _conditions(node_id, f"data.cases[{case_index}].conditions", case.get("conditions"), context)
        cases.append({"case_id": _text(case.get("case_id")) or _text(case.get("id")),
                      "logical_operator": case.get("logical_operator", "and"), "conditions": conditions})
    return {"cases": cases}


def _conditions(node_id: str, where: str, raw: Any, context: _Context) -> list[dict[str, Any]]:
    """Dify's conditions (an if/else case's, a loop's break conditions)."""
    conditions = []
    for index, condition in enumerate(_list(raw)):
        at = f"{where}[{index}]"
        if not isinstance(condition, Mapping):
            context.malformed(node_id, at, "a condition must be a mapping")
            continue
        operator = condition.get("comparison_operator")
        if not isinstance(operator, str) or operator not in _OPERATORS:
            context.refuse(node_id, f"{at}.comparison_operator", "unsupported_feature",
                           f"the comparison {operator!r}")
        if _mapping(condition.get("sub_variable_condition")).get("conditions"):
            context.refuse(node_id, f"{at}.sub_variable_condition", "unsupported_feature",
                           "conditions on file attributes")
        value = condition.get("value")
        if condition.get("value_type") == "value_selector" and condition.get("value_selector"):
            # Dify 0.6 compared with another variable; a reference says the same.
            value = "{{#" + ".".join(_selector(condition.get("value_selector"))) + "#}}"
        conditions.append({"variable_selector": _selector(condition.get("variable_selector")),
                           "comparison_operator": operator, "value": value})
    return conditions


def _code_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    language = data.get("code_language", "python3")
    if language != "python3":
        context.refuse(node_id, "data.code_language", "unsupported_feature",
                       f"{language} code (it runs Python 3)")
    outputs: dict[str, Any] = {}
    for name, output in _mapping(data.get("outputs")).items():
        declared = _mapping(output).get("type")
        kind = _var_type(declared)
        if kind is None:
            context.refuse(node_id, f"data.outputs.{name}.type", "unsupported_type",
                           f"code outputs of type {declared}")
            continue
        if _mapping(output).get("children"):
            context.warn(node_id, f"the declared fields of output {name!r} were dropped (its type, {kind}, is kept)")
        outputs[_text(name)] = {"type": kind}
    if not _empty(data.get("dependencies")):
        context.warn(node_id, "code dependencies were dropped: the sandbox has the standard library only")
    return {"code_language": "python3", "code": _text(data.get("code")),
            "variables": _bindings(data.get("variables")), "outputs": outputs}


def _template_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    return {"template": _text(data.get("template")), "variables": _bindings(data.get("variables"))}


def _pairs(value: Any) -> list[dict[str, str]]:
    """Dify's ``key: value`` lines (headers, params), one pair a line."""
    if isinstance(value, list):
        return [{"key": _text(item.get("key")), "value": _text(item.get("value"))}
                for item in value if isinstance(item, Mapping)]
    pairs = []
    for line in _text(value).splitlines():
        if not line.strip():
            continue
        key, _, rest = line.partition(":")
        pairs.append({"key": key.strip(), "value": rest.strip()})
    return pairs


def _http_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    auth = _mapping(data.get("authorization"))
    authorization: dict[str, Any] = {"type": "no-auth"}
    if auth.get("type") == "api-key":
        settings = _mapping(auth.get("config"))
        authorization = {"type": "api-key", "scheme": settings.get("type") or "bearer",
                         "header": _text(settings.get("header")) or "Authorization",
                         "api_key": _text(settings.get("api_key"))}
    elif auth.get("type") not in (None, "no-auth"):
        context.malformed(node_id, "data.authorization.type", f"unknown authorization {auth.get('type')!r}")
    body = _mapping(data.get("body"))
    body_type = body.get("type") or "none"
    raw_data = body.get("data")
    config_body: dict[str, Any] = {"type": body_type, "data": ""}
    if body_type == "binary":
        context.refuse(node_id, "data.body.type", "unsupported_feature",
                       "binary (file) request bodies")
    elif body_type in ("json", "raw-text"):
        texts = [_text(item.get("value")) for item in _list(raw_data) if isinstance(item, Mapping)]
        if len(texts) > 1:
            context.warn(node_id, "the body has several text parts; the first is kept")
        config_body["data"] = raw_data if isinstance(raw_data, str) else (texts[0] if texts else "")
    elif body_type in ("form-data", "x-www-form-urlencoded"):
        fields = []
        for index, item in enumerate(_list(raw_data)):
            if isinstance(item, Mapping) and item.get("type") == "file":
                context.refuse(node_id, f"data.body.data[{index}]", "unsupported_feature",
                               "file fields in request bodies")
            elif isinstance(item, Mapping):
                fields.append({"key": _text(item.get("key")), "type": "text", "value": _text(item.get("value"))})
        if isinstance(raw_data, str):
            fields = [{**pair, "type": "text"} for pair in _pairs(raw_data)]
        config_body["data"] = fields
    timeout = _mapping(data.get("timeout"))
    timeouts: dict[str, Any] = {}
    for name, limit in (("connect", 60), ("read", 600), ("write", 600)):
        raw = timeout.get(name, timeout.get(f"max_{name}_timeout"))
        seconds = _clamp(node_id, f"{name} timeout", raw, 1, limit, context) if raw else None
        if seconds is not None:
            timeouts[f"{name}_s"] = seconds
    if data.get("ssl_verify") is False:
        context.warn(node_id, "ssl_verify: false was dropped: Stratus always verifies TLS certificates")
    method = data.get("method")
    return {"method": method.upper() if isinstance(method, str) else "GET", "url": _text(data.get("url")),
            "headers": _pairs(data.get("headers")),
            "params": _pairs(data.get("params")),
            "body": config_body, "authorization": authorization, "timeout": timeouts}


def _aggregator_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    def output_type(value: Any, where: str) -> str:
        kind = _var_type(value if value is not None else "string")
        if kind is None:
            context.refuse(node_id, where, "unsupported_type", f"aggregated values of type {value}")
        return kind or "string"

    config: dict[str, Any] = {"output_type": output_type(data.get("output_type"), "data.output_type"),
                              "variables": [_selector(s) for s in _list(data.get("variables"))], "groups": []}
    settings = _mapping(data.get("advanced_settings"))
    if settings.get("group_enabled"):
        config["groups"] = [
            {"group_name": _text(group.get("group_name")),
             "output_type": output_type(group.get("output_type"), f"data.advanced_settings.groups[{index}]"),
             "variables": [_selector(s) for s in _list(group.get("variables"))]}
            for index, group in enumerate(_list(settings.get("groups"))) if isinstance(group, Mapping)]
    return config


def _iteration_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    output_type = data.get("output_type")
    if output_type is not None and not (isinstance(output_type, str) and re.match(ARRAY_TYPE, output_type)):
        context.warn(node_id, f"output_type {output_type!r} is not an array type; the collected output's type is "
                              "used")
        output_type = None
    mode = data.get("error_handle_mode") or "terminated"
    if mode not in ("terminated", "continue-on-error", "remove-abnormal-output"):
        context.malformed(node_id, "data.error_handle_mode", f"unknown error_handle_mode {mode!r}")
    parallel = _clamp(node_id, "parallel_nums", data.get("parallel_nums"), 1, MAX_PARALLEL_ITEMS, context, True)
    flatten = data.get("flatten_output")
    return {"start_node_id": _text(data.get("start_node_id")),
            "iterator_selector": _selector(data.get("iterator_selector")),
            "output_selector": _selector(data.get("output_selector")), "output_type": output_type,
            "is_parallel": bool(data.get("is_parallel")),
            "parallel_nums": MAX_PARALLEL_ITEMS if parallel is None else parallel, "error_handle_mode": mode,
            # Dify flattens unless told not to (its behaviour before the setting existed).
            "flatten_output": True if flatten is None else bool(flatten)}


def _loop_value(node_id: str, label: str, var_type: str, value: Any, context: _Context) -> Any:
    """A constant initial value as Dify reads it: numbers and JSON may be written as text."""
    if not isinstance(value, str) or var_type == "string":
        return value
    converted: Any
    if var_type == "number":
        converted = _number(value)
    elif var_type == "boolean":
        converted = {"true": True, "false": False}.get(value.strip().lower())
    else:
        converted = _json(value)
    if converted is None:
        context.warn(node_id, f"the initial value {value!r} of loop variable {label!r} is not a {var_type}; kept "
                              "as text")
        return value
    return converted


def _loop_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    variables = []
    for index, raw in enumerate(_list(data.get("loop_variables"))):
        if not isinstance(raw, Mapping):
            context.malformed(node_id, f"data.loop_variables[{index}]", "a loop variable must be a mapping")
            continue
        label = _text(raw.get("label"))
        var_type = _var_type(raw.get("var_type"))
        if var_type is None:
            context.refuse(node_id, f"data.loop_variables[{index}].var_type", "unsupported_type",
                           f"loop variables of type {raw.get('var_type')}")
            continue
        value_type = raw.get("value_type") or "constant"
        value = raw.get("value")
        value = _selector(value) if value_type == "variable" else _loop_value(node_id, label, var_type, value, context)
        variables.append({"label": label, "var_type": var_type, "value_type": value_type, "value": value})
    count = _clamp(node_id, "loop_count", data.get("loop_count"), 1, MAX_LOOP_COUNT, context, True)
    return {"start_node_id": _text(data.get("start_node_id")), "loop_count": 10 if count is None else count,
            "loop_variables": variables,
            "break_conditions": _conditions(node_id, "data.break_conditions", data.get("break_conditions"), context),
            "logical_operator": data.get("logical_operator") or "and"}


def _empty_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    return {}


def _assigner_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    if "items" not in data and "assigned_variable_selector" in data:
        # Version 1: one variable, from one variable (over-write, append) or cleared.
        mode = data.get("write_mode") or "over-write"
        return {"items": [{"variable_selector": _selector(data.get("assigned_variable_selector")),
                           "operation": mode, "input_type": "variable",
                           "value": None if mode == "clear" else _selector(data.get("input_variable_selector"))}]}
    items = []
    for index, raw in enumerate(_list(data.get("items"))):
        if not isinstance(raw, Mapping):
            context.malformed(node_id, f"data.items[{index}]", "an assigner item must be a mapping")
            continue
        input_type = raw.get("input_type") or "variable"
        value = raw.get("value")
        if input_type == "variable" and isinstance(value, list):
            value = _selector(value)
        # write_mode is what Dify's editor keeps from version 1; version 2 reads operation.
        items.append({"variable_selector": _selector(raw.get("variable_selector")),
                      "operation": raw.get("operation") or "over-write", "input_type": input_type, "value": value})
    return {"items": items}
def _vision_dropped(node_id: str, data: Mapping[str, Any], context: _Context) -> None:
    if _mapping(data.get("vision")).get("enabled"):
        context.warn(node_id, "vision (image inputs) was turned off: Stratus workflows give models no images yet")


def _classifier_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    classes = []
    for index, item in enumerate(_list(data.get("classes"))):
        if not isinstance(item, Mapping):
            context.malformed(node_id, f"data.classes[{index}]", "a class must be a mapping with id and name")
            continue
        # Dify's ids are digits or UUIDs (YAML may read the digits as a number).
        classes.append({"id": _text(item.get("id")), "name": _text(item.get("name"))})
    instruction = data.get("instruction")
    if _empty(instruction):
        # Dify's editor wrote "instructions" before it wrote "instruction".
        instruction = data.get("instructions")
    _vision_dropped(node_id, data, context)
    # ``memory`` (conversation history) only exists in chatflows, as for llm nodes.
    if data.get("memory") and context.mode == "chatflow":
        context.warn(node_id, "memory (the conversation's past turns) is not given to the classifier")
    return {"query_variable_selector": _selector(data.get("query_variable_selector")),
            "model": _model_from_dify(node_id, data.get("model"), context), "classes": classes,
            "instruction": _text(instruction)}


def _extractor_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    parameters = []
    for index, item in enumerate(_list(data.get("parameters"))):
        where = f"data.parameters[{index}]"
        if not isinstance(item, Mapping):
            context.malformed(node_id, where, "a parameter must be a mapping with name and type")
            continue
        declared = item.get("type", "string")
        kind = PARAMETER_TYPES.get(declared) if isinstance(declared, str) else None
        if kind is None:
            context.refuse(node_id, f"{where}.type", "unsupported_type", f"parameters of type {declared}")
            continue
        options = [_text(option) for option in _list(item.get("options")) if isinstance(option, str | int | float)]
        if options and kind != "string":
            context.warn(node_id, f"the options of parameter {item.get('name')!r} were dropped (only string "
                                  "parameters take options)")
            options = []
        parameters.append({"name": _text(item.get("name")), "type": kind,
                           "description": _text(item.get("description")), "required": bool(item.get("required")),
                           "options": options})
    _vision_dropped(node_id, data, context)
    mode = data.get("reasoning_mode")
    return {"query": _selector(data.get("query")), "model": _model_from_dify(node_id, data.get("model"), context),
            "parameters": parameters, "instruction": _text(data.get("instruction")),
            # Dify reads an unset mode as function calling.
            "reasoning_mode": mode if mode else "function_call"}


def _list_operator_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    declared = data.get("var_type")
    var_type = _var_type(declared)
    if declared in ("array[file]", "file"):
        context.refuse(node_id, "data.var_type", "unsupported_type", "list operations on files")
    elif declared is None:
        context.warn(node_id, "the list's type (var_type) is not given; array[string] is assumed (validation "
                              "checks it against the variable)")
    elif var_type not in LIST_TYPES:
        context.refuse(node_id, "data.var_type", "unsupported_type", f"list operations on {declared}")
    filter_by, order_by = _mapping(data.get("filter_by")), _mapping(data.get("order_by"))
    limit, extract_by = _mapping(data.get("limit")), _mapping(data.get("extract_by"))
    conditions = []
    for index, item in enumerate(_list(filter_by.get("conditions"))):
        if not isinstance(item, Mapping):
            context.malformed(node_id, f"data.filter_by.conditions[{index}]", "a condition must be a mapping")
            continue
        operator, value = item.get("comparison_operator", "contains"), item.get("value", "")
        if operator in ("in", "not in") and isinstance(value, str):
            context.warn(node_id, f"filter {operator!r} {value!r} compares whole items with a list of values: "
                                  f"it became [{value!r}]")
            value = [value]
        conditions.append({"key": _text(item.get("key")), "comparison_operator": operator, "value": value})
    size = _number(limit.get("size"))
    enabled = bool(limit.get("enabled"))
    if enabled and (size is None or size < 1):
        context.warn(node_id, f"limit size {limit.get('size')!r} keeps nothing; 1 is used")
        size = 1
    config: dict[str, Any] = {
        "variable": _selector(data.get("variable")),
        "filter_by": {"enabled": bool(filter_by.get("enabled")), "conditions": conditions},
        "order_by": {"enabled": bool(order_by.get("enabled")), "key": _text(order_by.get("key")),
                     "value": order_by.get("value") or "asc"},
        # Dify's -1 ("no limit") on a disabled limit: Stratus's default size.
        "limit": {"enabled": enabled, **({"size": min(int(size), 100_000)} if size is not None and size >= 1
                                          else {})},
        "extract_by": {"enabled": bool(extract_by.get("enabled")), "serial": _text(extract_by.get("serial")) or "1"},
    }
    if var_type in LIST_TYPES:
        config["var_type"] = var_type
    return config


def _document_extractor_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    if data.get("output_image"):
        context.warn(node_id, "output_image was dropped: the extractor answers the documents' text only")
    return {"variable_selector": _selector(data.get("variable_selector")),
            "is_array_file": bool(data.get("is_array_file"))}


def _human_input_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    from shared.workflows.configs import MAX_PAUSE_S

    fields = []
    for item in _list(data.get("inputs")):
        item = _mapping(item)
        name = _text(item.get("output_variable_name"))
        placeholder = _mapping(item.get("placeholder"))
        if placeholder.get("value") or placeholder.get("selector"):
            context.warn(node_id, f"the placeholder of field {name!r} was dropped (give the field a default instead)")
        fields.append({"name": name, "label": name, "type": "paragraph" if item.get("type") == "paragraph" else "text"})
    actions = [{"id": _text(_mapping(action).get("id")), "title": _text(_mapping(action).get("title"))}
               for action in _list(data.get("user_actions"))]
    for method in _list(data.get("delivery_methods")):
        method = _mapping(method)
        if method.get("type") != "webapp" and method.get("enabled", True):
            context.warn(node_id, f"the {method.get('type')} delivery was dropped: a paused run shows its form to "
                                  "whoever follows the run (GET the run, the workflow.paused event)")
    timeout_s: int | None = DIFY_FORM_TIMEOUT_S
    if "timeout" in data:
        amount = _number(data.get("timeout"))
        unit = 86400 if data.get("timeout_unit") == "day" else 3600
        timeout_s = None if amount is None or amount <= 0 else int(amount * unit)
    if timeout_s is not None and timeout_s > MAX_PAUSE_S:
        context.warn(node_id, f"the timeout was shortened to {MAX_PAUSE_S // 86400} days, the longest a run pauses")
        timeout_s = MAX_PAUSE_S
    return {"form_content": _text(data.get("form_content")), "fields": fields, "actions": actions,
            "timeout_s": timeout_s, "on_timeout": "fail"}


def _sub_workflow_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    """A Dify tool whose provider is a workflow: the tenant's workflow of that provider's id or
    name (else the import is refused, naming the node)."""
    names = [_text(data.get(key)) for key in ("provider_id", "provider_name", "tool_name")]
    target: tuple[str, list[str]] | None = None
    if context.workflows is None:
        target = (names[0], [])  # mapping an export back: the id it was exported with
    else:
        for name in names:
            if name and (target := context.workflows(name)) is not None:
                break
    if target is None:
        context.refuse(node_id, "data.provider_id", "unsupported_node_type",
                       f"workflow tool {names[1] or names[0]!r} nodes (no workflow of this tenant has that id or "
                       "name: import or create it first, publish it, then import this file)")
        return {}
    inputs = []
    for name, parameter in _mapping(data.get("tool_parameters")).items():
        parameter = _mapping(parameter)
        value = parameter.get("value")
        if parameter.get("type") == "variable" and isinstance(value, list):
            selector = _selector(value)
        else:
            references = template_references(value) if isinstance(value, str) else []
            whole = isinstance(value, str) and len(references) == 1 and not TEMPLATE_REFERENCE.sub("", value).strip()
            if not whole:
                context.warn(node_id, f"the constant value of input {name!r} was dropped: a sub-workflow's inputs "
                                      "take variables (give the called workflow's input a default instead)")
                continue
            selector = references[0]
        inputs.append({"variable": str(name), "value_selector": selector})
    return {"workflow_id": target[0], "version": None, "inputs": inputs,
            "outputs": [{"variable": output, "type": None} for output in target[1]]}


def match_tool(specs: Sequence[ToolSpec], provider_keys: Sequence[str], tool_name: str) -> ToolSpec | None:
    """The tool a Dify tool node names: a tool ``tool_name`` of the tenant's provider whose name
    (ignoring case) or id is one of ``provider_keys`` (Dify's provider_name, provider_id), else the
    Stratus built-in of that name."""
    keys = {key.lower() for key in provider_keys if key}
    for spec in specs:
        if spec.kind in ("openapi", "mcp", "workflow") and tool_name in (spec.name, spec.ref.name) \
                and (spec.provider_name.lower() in keys or spec.ref.source.lower() in keys):
            return spec
    return next((spec for spec in specs if spec.kind == "builtin" and spec.name == tool_name), None)


def _tool_argument(value: Any) -> dict[str, Any] | None:
    """A Dify tool parameter (``{type: variable | mixed | constant, value}``, or the older bare
    value) as an argument; None when it is unset."""
    if isinstance(value, Mapping) and "value" in value and value.get("type") in ("variable", "mixed", "constant"):
        kind, raw = value.get("type"), value.get("value")
        if kind == "variable":
            return {"type": "selector", "value": _selector(raw)} if isinstance(raw, list) and raw else None
        if raw is None or raw == "":
            return None
        if kind == "mixed":
            return {"type": "template", "value": raw if isinstance(raw, str) else json.dumps(raw)}
        return {"type": "constant", "value": raw}
    if value is None or value == "":
        return None
    if isinstance(value, str) and template_references(value):
        return {"type": "template", "value": value}
    return {"type": "constant", "value": value}


def _tool_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    """A Dify tool (builtin, API or plugin) whose provider is a tool provider of the tenant of the
    same name (or id), with a tool of that name, or a Stratus built-in of that name; else the
    import is refused, naming the node. Its parameters and configurations become arguments (those
    the tool does not take are dropped, with a warning); the fields other nodes read of it become
    its declared outputs (:func:`_declare_tool_outputs`)."""
    provider_id, provider_name = _text(data.get("provider_id")), _text(data.get("provider_name"))
    tool_name = _text(data.get("tool_name"))
    properties: Mapping[str, Any] | None = None
    if context.exporting:
        ref, shown = f"{provider_id}/{tool_name}", "" if provider_name == provider_id else provider_name
    else:
        spec = match_tool(context.tool_specs(), [provider_name, provider_id], tool_name)
        if spec is None:
            context.refuse(node_id, "data.provider_id", "unsupported_node_type",
                           f"tool {tool_name!r} of {provider_name or provider_id!r} nodes (no tool provider of this "
                           "tenant has that name and that tool, and no built-in has that name: create the provider "
                           "(POST /api/v1/tools), then import this file again)")
            return {}
        # The provider's name, for editors; none for a built-in or workflow, or when the file named
        # the provider by its id alone (as an export of a node without one does).
        ref = str(spec.ref)
        named = provider_name and provider_name != spec.ref.source
        shown = spec.provider_name if spec.kind in ("openapi", "mcp") and named else ""
        declared = spec.parameters.get("properties") if isinstance(spec.parameters, dict) else None
        closed = isinstance(spec.parameters, dict) and spec.parameters.get("additionalProperties") is False
        properties = declared if isinstance(declared, dict) and closed else None
    arguments: dict[str, Any] = {}
    for source in ("tool_configurations", "tool_parameters"):
        for name, value in _mapping(data.get(source)).items():
            argument = _tool_argument(value)
            if argument is None:
                continue
            if properties is not None and str(name) not in properties:
                context.warn(node_id, f"{tool_name} takes no argument {name!r}; its value was dropped")
                continue
            arguments[str(name)] = argument
    return {"tool": ref, "arguments": arguments, "outputs": [], "provider_name": shown}


def _declare_tool_outputs(nodes: list[dict[str, Any]]) -> None:
    """Each tool node answers, as outputs of its own, the fields of its JSON answer that other
    nodes read of it (Dify's tool output variables, e.g. ``{{#tool.result#}}``)."""
    tools = {node["id"]: node for node in nodes if node["type"] == "tool"}
    if not tools:
        return
    read: dict[str, list[str]] = {node_id: [] for node_id in tools}

    def note(selector: Sequence[Any]) -> None:
        if len(selector) >= 2 and selector[0] in read and isinstance(selector[1], str) \
                and selector[1] not in DIFY_TOOL_OUTPUTS and selector[1] not in read[selector[0]]:
            read[selector[0]].append(selector[1])

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            if value and all(isinstance(part, str) for part in value):
                note(value)
            for item in value:
                walk(item)
        elif isinstance(value, str):
            for selector in template_references(value):
                note(selector)

    for node in nodes:
        walk(node["config"])
    for node_id, fields in read.items():
        config = tools[node_id]["config"]
        declared = {output.get("variable") for output in config.get("outputs", []) if isinstance(output, Mapping)}
        added = [{"variable": name, "type": None} for name in fields
                 if name not in declared and re.match(VARIABLE_NAME, name)]
        if added:
            config["outputs"] = [*config.get("outputs", []), *added]
            tools[node_id]["config"] = _canonical("tool", config)


def _agent_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    """An agent node as Stratus exports it (``agent_strategy_provider_name: stratus``)."""
    parameters = _mapping(data.get("agent_parameters"))
    query = _mapping(parameters.get("query"))
    return {"agent_id": _text(data.get("agent_id")), "prompt": _text(query.get("value")),
            "inputs": {str(name): _text(_mapping(value).get("value"))
                       for name, value in _mapping(data.get("agent_inputs")).items()}}


def _answer_from_dify(node_id: str, data: Mapping[str, Any], context: _Context) -> dict[str, Any]:
    return {"answer": _text(data.get("answer"))}


_CONFIG_FROM_DIFY: dict[str, Callable[[str, Mapping[str, Any], _Context], dict[str, Any]]] = {
    "start": _start_from_dify,
    "end": _end_from_dify,
    "llm": _llm_from_dify,
    "knowledge_retrieval": _knowledge_from_dify,
    "if_else": _if_else_from_dify,
    "code": _code_from_dify,
    "template": _template_from_dify,
    "http_request": _http_from_dify,
    "variable_aggregator": _aggregator_from_dify,
    "iteration": _iteration_from_dify,
    "iteration_start": _empty_from_dify,
    "loop": _loop_from_dify,
    "loop_start": _empty_from_dify,
    "loop_end": _empty_from_dify,
    "assigner": _assigner_from_dify,
    "question_classifier": _classifier_from_dify,
    "parameter_extractor": _extractor_from_dify,
    "list_operator": _list_operator_from_dify,
    "document_extractor": _document_extractor_from_dify,
    "human_input": _human_input_from_dify,
    "sub_workflow": _sub_workflow_from_dify,
    "answer": _answer_from_dify,
    "tool": _tool_from_dify,
    "agent": _agent_from_dify,
}


# -- the extension (what Dify has no field for) ------------------------------------------------
def _pointer(path: Iterable[str | int]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _apply_extension(node: dict[str, Any], extension: Any, context: _Context) -> None:
    if not isinstance(extension, Mapping):
        context.warn(node["id"], f"the {EXTENSION_KEY!r} data is not a mapping; ignored")
        return
    for pointer, value in extension.items():
        parts = [part.replace("~1", "/").replace("~0", "~") for part in str(pointer).split("/")[1:]]
        target: Any = node
        for part in parts[:-1]:
            if isinstance(target, dict):
                target = target.get(part)
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                target = None
        last = parts[-1] if parts else ""
        if parts[:1] in (["id"], ["type"]) or not parts:
            context.warn(node["id"], f"the {EXTENSION_KEY!r} entry {pointer!r} cannot change a node's id or type")
        elif isinstance(target, dict):
            target[last] = value
        elif isinstance(target, list) and last.isdigit() and int(last) < len(target):
            target[int(last)] = value
        else:
            context.warn(node["id"], f"the {EXTENSION_KEY!r} entry {pointer!r} names nothing in the node (it was "
                                     "edited in Dify); ignored")


def _differences(original: Any, mapped: Any, path: list[str | int]) -> dict[str, Any]:
    """JSON pointer → value turning ``mapped`` into ``original``: descends into mappings with
    the same keys and lists of the same length, else replaces the value."""
    if isinstance(original, dict) and isinstance(mapped, dict) and original.keys() == mapped.keys():
        found: dict[str, Any] = {}
        for key in original:
            found.update(_differences(original[key], mapped[key], [*path, key]))
        return found
    if isinstance(original, list) and isinstance(mapped, list) and len(original) == len(mapped):
        found = {}
        for index, (a, b) in enumerate(zip(original, mapped, strict=True)):
            found.update(_differences(a, b, [*path, index]))
        return found
    if json.dumps(original, sort_keys=True) == json.dumps(mapped, sort_keys=True):
        return {}
    return {_pointer(path): original}


# -- canvas positions --------------------------------------------------------------------------
def _layout(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """A position for every node: its own, else a column by its depth from the start."""
    ids = [node["id"] for node in nodes]
    incoming = {node_id: 0 for node_id in ids}
    successors: dict[str, list[str]] = {node_id: [] for node_id in ids}
    for edge in edges:
        if edge["source"] in successors and edge["target"] in incoming:
            successors[edge["source"]].append(edge["target"])
            incoming[edge["target"]] += 1
    depth = dict.fromkeys(ids, 0)
    ready = [node_id for node_id in ids if incoming[node_id] == 0]
    while ready:
        current = ready.pop(0)
        for successor in successors[current]:
            depth[successor] = max(depth[successor], depth[current] + 1)
            incoming[successor] -= 1
            if incoming[successor] == 0:
                ready.append(successor)
    rows: dict[int, int] = {}
    positions: dict[str, dict[str, float]] = {}
    for node in nodes:
        column = depth[node["id"]]
        row = rows[column] = rows.get(column, -1) + 1
        positions[node["id"]] = node.get("position") or {"x": 30.0 + 300.0 * column, "y": 30.0 + 150.0 * row}
    return positions


def _place(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
    positions = _layout(nodes, edges)
    for node in nodes:
        node["position"] = positions[node["id"]]


# -- export ------------------------------------------------------------------------------------
def export_dify(document: WorkflowDocument | Mapping[str, Any], *, name: str, description: str = "") -> str:
    """The document as a Dify app DSL (YAML, version 0.3.1, a workflow app) that Dify's
    importer takes and :func:`import_dify` maps back to an equal document. Models are written
    as provider ``stratus`` with the tenant model's name (``default``: the tenant's default)."""
    document = document if isinstance(document, WorkflowDocument) else WorkflowDocument.model_validate(document)
    node_dicts = [node.model_dump(mode="json") for node in document.nodes]
    edge_dicts = [edge.model_dump(mode="json") for edge in document.edges]
    positions = _layout(node_dicts, edge_dicts)
    nodes_by_id = {node.id: node for node in document.nodes}
    nodes = [_node_to_dify(node, positions, document) for node in document.nodes]
    edges = []
    for edge in document.edges:
        source, target = nodes_by_id.get(edge.source), nodes_by_id.get(edge.target)
        container = nodes_by_id.get(source.parent_id or "") if source is not None else None
        data: dict[str, Any] = {"sourceType": STRATUS_TYPES.get(source.type if source else "", ""),
                                "targetType": STRATUS_TYPES.get(target.type if target else "", ""),
                                **_container_flags(container)}
        edges.append({
            "id": f"{edge.source}-{edge.source_handle}-{edge.target}-target",
            "source": edge.source, "sourceHandle": edge.source_handle,
            "target": edge.target, "targetHandle": "target", "type": "custom",
            "zIndex": CHILD_Z_INDEX if container is not None else 0, "data": data,
        })
    conversation = [{"id": _stable_id("conversation", variable.name), "name": variable.name,
                     "selector": ["conversation", variable.name], "value_type": variable.type,
                     "value": variable.default if variable.default is not None else empty_value(variable.type),
                     "description": variable.description} for variable in document.conversation_variables]
    app = {
        "app": {"name": name, "description": description, "mode": STRATUS_APP_MODES[document.mode], "icon": "🤖",
                "icon_background": "#FFEAD5", "use_icon_as_answer_icon": False},
        "dependencies": [],
        "kind": "app",
        "version": EXPORT_VERSION,
        "workflow": {"conversation_variables": conversation, "environment_variables": [], "features": {},
                     "graph": {"nodes": nodes, "edges": edges, "viewport": {"x": 0, "y": 0, "zoom": 1}}},
    }
    return str(yaml.safe_dump(app, allow_unicode=True, sort_keys=False, width=120))


def _container_flags(container: Node | None) -> dict[str, Any]:
    """How Dify marks a node or edge inside a container (and outside any)."""
    if container is None:
        return {"isInIteration": False, "isInLoop": False}
    if container.type == "iteration":
        return {"isInIteration": True, "isInLoop": False, "iteration_id": container.id}
    return {"isInIteration": False, "isInLoop": True, "loop_id": container.id}


def _node_to_dify(node: Node, positions: Mapping[str, Mapping[str, float]],
                  document: WorkflowDocument) -> dict[str, Any]:
    data: dict[str, Any] = {"type": STRATUS_TYPES[node.type], "title": node.title, "desc": node.description,
                            "selected": False}
    container = None
    if node.parent_id is not None:
        try:
            container = document.node(node.parent_id)
        except KeyError:
            container = None
        data.update(_container_flags(container))
    try:
        config = parse_config(node.type, node.config)
    except ValidationError:
        config = None  # an unfinished draft: the extension carries its config as it is
    if config is not None:
        data.update(_CONFIG_TO_DIFY[node.type](node, config, document))
    if node.error_strategy != "fail":
        data["error_strategy"] = node.error_strategy.replace("_", "-")
    if node.default_value:
        declared = {**ERROR_OUTPUTS, **(outputs_of(node, config) if config is not None else {})}
        data["default_value"] = [{"key": key, "type": declared.get(key) or _type_of(value), "value": value}
                                 for key, value in node.default_value.items()]
    if node.retry != RetryPolicy():
        data["retry_config"] = {"retry_enabled": node.retry.max_attempts > 1,
                                "max_retries": node.retry.max_attempts - 1, "retry_interval": node.retry.interval_ms}
    # What the mapping back loses travels in the extension: the difference, field by field.
    context = _Context(lambda _name: True, None, exporting=True)
    mapped = _node_from_dify(node.id, node.type, data, None, context)
    original = node.model_dump(mode="json")
    original["config"] = _canonical(node.type, original["config"])
    # The canvas fields travel as Dify's own (parentId, width and height).
    canvas = ("id", "type", "position", "parent_id", "size")
    extension = _differences({k: v for k, v in original.items() if k not in canvas},
                             {k: v for k, v in mapped.items() if k not in canvas}, [])
    if extension:
        data[EXTENSION_KEY] = extension
    position = positions[node.id]
    place = {"x": position["x"], "y": position["y"]}
    absolute = dict(place)
    if node.parent_id is not None and node.parent_id in positions:
        # A child's position is relative to its container's.
        absolute = {"x": place["x"] + positions[node.parent_id]["x"], "y": place["y"] + positions[node.parent_id]["y"]}
    dify: dict[str, Any] = {"id": node.id, "type": _START_CANVAS_TYPES.get(node.type, "custom"), "position": place,
                            "positionAbsolute": absolute, "sourcePosition": "right", "targetPosition": "left",
                            "selected": False, "data": data}
    if node.parent_id is not None:
        dify["parentId"] = node.parent_id
        dify["zIndex"] = CHILD_Z_INDEX
    elif node.type in CONTAINER_TYPES:
        dify["zIndex"] = CONTAINER_Z_INDEX
    if node.type in _START_CANVAS_TYPES:
        dify["draggable"] = dify["selectable"] = False
    if node.size is not None:
        dify["width"] = data["width"] = node.size.width
        dify["height"] = data["height"] = node.size.height
    return dify


def _type_of(value: Any) -> str:
    for kind in ("string", "number", "boolean", "object", "array[string]", "array[number]", "array[object]"):
        if value_matches(value, kind):
            return kind
    return "string"


def _stable_id(*parts: str) -> str:
    """The same id for the same node on every export (Dify's editor wants ids on list items)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "stratus:" + ":".join(parts)))


# -- each node type's config: Stratus → Dify ---------------------------------------------------
_INPUT_TYPES_OUT = {"string": "text-input", "number": "number", "boolean": "checkbox", "object": "json_object"}


def _start_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, StartConfig)
    variables = []
    for variable in config.variables:
        kind = _INPUT_TYPES_OUT.get(variable.type, "json_object")
        if variable.type == "string" and variable.options:
            kind = "select"
        # Only Dify's select inputs have options (a number input's travel in the extension).
        entry: dict[str, Any] = {"variable": variable.variable, "label": variable.label, "type": kind,
                                 "required": variable.required,
                                 "options": list(variable.options) if kind == "select" else [],
                                 "max_length": variable.max_length}
        if variable.default is not None:
            entry["default"] = variable.default
        if variable.description:
            entry["description"] = entry["hint"] = variable.description
        variables.append(entry)
    return {"variables": variables}


def _end_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, EndConfig)
    outputs = []
    for output in config.outputs:
        entry: dict[str, Any] = {"variable": output.variable, "value_selector": list(output.value_selector)}
        if output.value_type is not None:
            entry["value_type"] = output.value_type
        outputs.append(entry)
    return {"outputs": outputs}


def _model_to_dify(model: ModelRef) -> dict[str, Any]:
    params: dict[str, Any] = {key: value for key, value in (("temperature", model.temperature),
                                                            ("top_p", model.top_p),
                                                            ("max_tokens", model.max_tokens)) if value is not None}
    if model.stop:
        params["stop"] = list(model.stop)
    return {"provider": STRATUS_PROVIDER, "name": model.name or DEFAULT_MODEL_NAME, "mode": "chat",
            "completion_params": params}


def _llm_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, LlmConfig)
    data: dict[str, Any] = {
        "model": _model_to_dify(config.model),
        "prompt_template": [{"id": _stable_id(node.id, "prompt", str(index)), "role": message.role,
                             "text": message.text} for index, message in enumerate(config.prompt_template)],
        "context": {"enabled": config.context.enabled, "variable_selector": list(config.context.variable_selector)},
        "vision": {"enabled": False},
        "structured_output_enabled": config.structured_output.enabled,
    }
    if config.structured_output.json_schema:
        data["structured_output"] = {"schema": config.structured_output.json_schema}
    return data


def _knowledge_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, KnowledgeRetrievalConfig)
    retrieval = config.retrieval
    weight = {"semantic": 1.0, "full_text": 0.0}.get(retrieval.mode, retrieval.semantic_weight)
    return {
        "query_variable_selector": list(config.query_variable_selector),
        "dataset_ids": list(config.knowledge_base_ids),
        "retrieval_mode": "multiple",
        "multiple_retrieval_config": {
            "top_k": retrieval.top_k, "score_threshold": retrieval.score_threshold,
            "reranking_enable": retrieval.rerank,
            "reranking_mode": "reranking_model" if retrieval.rerank else "weighted_score",
            "weights": {"vector_setting": {"vector_weight": weight, "embedding_provider_name": "",
                                           "embedding_model_name": ""},
                        "keyword_setting": {"keyword_weight": round(1.0 - weight, 6)}},
        },
    }


def _if_else_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, IfElseConfig)
    cases = []
    for case in config.cases:
        conditions = _dify_conditions(node, case.case_id, case.conditions, document)
        cases.append({"id": case.case_id, "case_id": case.case_id, "logical_operator": case.logical_operator,
                      "conditions": conditions})
    return {"cases": cases}


def _selector_type(document: WorkflowDocument, selector: list[str]) -> str:
    """The type Dify's editor shows next to a condition (the variable's, else string)."""
    if len(selector) != 2:
        return "string"
    try:
        source = document.node(selector[0])
        return outputs_of(source).get(selector[1]) or "string"
    except (KeyError, ValidationError):
        return "string"


def _code_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, CodeConfig)
    return {"code_language": config.code_language, "code": config.code,
            "variables": [{"variable": v.variable, "value_selector": list(v.value_selector)}
                          for v in config.variables],
            "outputs": {name: {"type": output.type, "children": None} for name, output in config.outputs.items()}}


def _template_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, TemplateConfig)
    return {"template": config.template,
            "variables": [{"variable": v.variable, "value_selector": list(v.value_selector)}
                          for v in config.variables]}


def _seconds(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _http_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, HttpRequestConfig)
    auth = config.authorization
    authorization: dict[str, Any] = {"type": "no-auth", "config": None}
    if auth.type == "api-key":
        authorization = {"type": "api-key", "config": {"type": auth.scheme, "api_key": auth.api_key,
                                                       "header": auth.header}}
    body = config.body
    if isinstance(body.data, str):
        data: list[dict[str, Any]] = [{"key": "", "type": "text", "value": body.data}] if body.data else []
    else:
        data = [{"key": f.key, "type": f.type, "value": f.value} for f in body.data]
    return {
        "method": config.method.lower(), "url": config.url,
        "authorization": authorization,
        "headers": "\n".join(f"{pair.key}:{pair.value}" for pair in config.headers),
        "params": "\n".join(f"{pair.key}:{pair.value}" for pair in config.params),
        "body": {"type": body.type, "data": data},
        "timeout": {"connect": _seconds(config.timeout.connect_s), "read": _seconds(config.timeout.read_s),
                    "write": _seconds(config.timeout.write_s)},
    }


def _aggregator_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, VariableAggregatorConfig)
    return {
        "output_type": config.output_type,
        "variables": [list(selector) for selector in config.variables],
        "advanced_settings": {
            "group_enabled": bool(config.groups),
            "groups": [{"groupId": _stable_id(node.id, group.group_name), "group_name": group.group_name,
                        "output_type": group.output_type, "variables": [list(s) for s in group.variables]}
                       for group in config.groups],
        },
    }


def _dify_conditions(node: Node, prefix: str, conditions: Iterable[Any], document: WorkflowDocument,
                     ) -> list[dict[str, Any]]:
    return [{"id": _stable_id(node.id, prefix, str(index)), "variable_selector": list(condition.variable_selector),
             "comparison_operator": condition.comparison_operator, "value": condition.value,
             "varType": _selector_type(document, condition.variable_selector)}
            for index, condition in enumerate(conditions)]


def _iteration_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, IterationConfig)
    data: dict[str, Any] = {
        "start_node_id": config.start_node_id, "iterator_selector": list(config.iterator_selector),
        "iterator_input_type": _selector_type(document, config.iterator_selector),
        "output_selector": list(config.output_selector), "is_parallel": config.is_parallel,
        "parallel_nums": config.parallel_nums, "error_handle_mode": config.error_handle_mode,
        "flatten_output": config.flatten_output}
    if config.output_type is not None:
        data["output_type"] = config.output_type
    return data


def _loop_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, LoopConfig)
    variables = []
    for variable in config.loop_variables:
        value = variable.value
        if variable.value_type == "constant" and variable.var_type.startswith("array["):
            # Dify reads an array constant from JSON text only.
            value = json.dumps(value, ensure_ascii=False)
        variables.append({"id": _stable_id(node.id, "loop-variable", variable.label), "label": variable.label,
                          "var_type": variable.var_type, "value_type": variable.value_type, "value": value})
    return {"start_node_id": config.start_node_id, "loop_count": config.loop_count, "loop_variables": variables,
            "break_conditions": _dify_conditions(node, "break", config.break_conditions, document),
            "logical_operator": config.logical_operator}


def _empty_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    return {}


def _answer_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, AnswerConfig)
    return {"answer": config.answer, "variables": []}


def _assigner_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, AssignerConfig)
    return {"version": "2", "items": [
        {"variable_selector": list(item.variable_selector), "input_type": item.input_type,
         "operation": item.operation, "value": item.value} for item in config.items]}
def _classifier_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, QuestionClassifierConfig)
    return {"query_variable_selector": list(config.query_variable_selector), "model": _model_to_dify(config.model),
            "classes": [{"id": item.id, "name": item.name} for item in config.classes],
            "instruction": config.instruction, "vision": {"enabled": False}}


def _extractor_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, ParameterExtractorConfig)
    parameters = []
    for parameter in config.parameters:
        # "select" and "bool": the names every Dify release reads.
        kind = {"boolean": "bool"}.get(parameter.type, parameter.type)
        if parameter.type == "string" and parameter.options:
            kind = "select"
        parameters.append({"name": parameter.name, "type": kind, "options": list(parameter.options),
                           "description": parameter.description, "required": parameter.required})
    return {"query": list(config.query), "model": _model_to_dify(config.model), "parameters": parameters,
            "instruction": config.instruction, "reasoning_mode": config.reasoning_mode, "vision": {"enabled": False}}


def _list_operator_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, ListOperatorConfig)

    def value(item: Any) -> Any:
        # Dify's condition values are text (or a list of text, or a boolean).
        if isinstance(item, list):
            return [str(v) for v in item]
        return item if isinstance(item, str | bool) or item is None else str(item)

    return {
        "variable": list(config.variable), "var_type": config.var_type, "item_var_type": config.item_type,
        "filter_by": {"enabled": config.filter_by.enabled, "conditions": [
            {"key": c.key, "comparison_operator": c.comparison_operator, "value": value(c.value)}
            for c in config.filter_by.conditions]},
        "order_by": {"enabled": config.order_by.enabled, "key": config.order_by.key, "value": config.order_by.value},
        "limit": {"enabled": config.limit.enabled, "size": config.limit.size},
        "extract_by": {"enabled": config.extract_by.enabled, "serial": config.extract_by.serial},
    }


def _document_extractor_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, DocumentExtractorConfig)
    return {"variable_selector": list(config.variable_selector), "is_array_file": config.is_array_file}


def _human_input_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, HumanInputConfig)
    timeout_s = config.timeout_s or DIFY_FORM_TIMEOUT_S
    by_day = timeout_s % 86400 == 0
    return {"form_content": config.form_content,
            "inputs": [{"type": "paragraph" if item.type == "paragraph" else "text_input",
                        "output_variable_name": item.name, "placeholder": None} for item in config.fields],
            "user_actions": [{"id": action.id, "title": action.title, "button_style": "default"}
                             for action in config.actions],
            "timeout": timeout_s // 86400 if by_day else math.ceil(timeout_s / 3600),
            "timeout_unit": "day" if by_day else "hour",
            "delivery_methods": [{"type": "webapp", "enabled": True, "id": _stable_id(node.id, "webapp"),
                                  "config": {}}]}


def _sub_workflow_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    assert isinstance(config, SubWorkflowConfig)
    return {"provider_id": config.workflow_id, "provider_type": "workflow", "provider_name": config.workflow_id,
            "tool_name": config.workflow_id, "tool_label": node.title, "tool_configurations": {},
            "tool_parameters": {binding.variable: {"type": "variable", "value": list(binding.value_selector)}
                                for binding in config.inputs}}


_DIFY_ARGUMENT_TYPES = {"selector": "variable", "template": "mixed", "constant": "constant"}


def _tool_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    """A tool node as a Dify tool: its provider's id (``builtin``, ``workflow``, or the tenant
    provider's id) and name, the tool's name, its arguments as tool parameters. In Dify, pick a
    tool of your own; imported back into Stratus it names the same tool."""
    assert isinstance(config, ToolConfig)
    source, _, name = config.tool.partition("/")
    return {"provider_id": source, "provider_type": "builtin" if source == "builtin" else "api",
            "provider_name": config.provider_name or source, "tool_name": name, "tool_label": node.title,
            "tool_configurations": {}, "tool_node_version": "2",
            "tool_parameters": {arg_name: {"type": _DIFY_ARGUMENT_TYPES[argument.type], "value": argument.value}
                                for arg_name, argument in config.arguments.items()}}


def _agent_to_dify(node: Node, config: Any, document: WorkflowDocument) -> dict[str, Any]:
    """An agent node as a Dify agent node naming Stratus's "strategy": Dify cannot run it (pick a
    strategy of your own there); Stratus imports it back."""
    assert isinstance(config, AgentNodeConfig)
    return {"agent_strategy_provider_name": STRATUS_AGENT_STRATEGY, "agent_strategy_name": "published-agent",
            "agent_strategy_label": "Stratus agent", "agent_id": config.agent_id,
            "agent_parameters": {"query": {"type": "mixed", "value": config.prompt}},
            "agent_inputs": {name: {"type": "mixed", "value": text} for name, text in config.inputs.items()}}


_CONFIG_TO_DIFY: dict[str, Callable[[Node, Any, WorkflowDocument], dict[str, Any]]] = {
    "answer": _answer_to_dify,
    "start": _start_to_dify,
    "end": _end_to_dify,
    "llm": _llm_to_dify,
    "knowledge_retrieval": _knowledge_to_dify,
    "if_else": _if_else_to_dify,
    "code": _code_to_dify,
    "template": _template_to_dify,
    "http_request": _http_to_dify,
    "variable_aggregator": _aggregator_to_dify,
    "iteration": _iteration_to_dify,
    "iteration_start": _empty_to_dify,
    "loop": _loop_to_dify,
    "loop_start": _empty_to_dify,
    "loop_end": _empty_to_dify,
    "assigner": _assigner_to_dify,
    "question_classifier": _classifier_to_dify,
    "parameter_extractor": _extractor_to_dify,
    "list_operator": _list_operator_to_dify,
    "document_extractor": _document_extractor_to_dify,
    "human_input": _human_input_to_dify,
    "sub_workflow": _sub_workflow_to_dify,
    "tool": _tool_to_dify,
    "agent": _agent_to_dify,
}
