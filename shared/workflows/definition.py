"""A workflow document: the JSON a draft holds and a published version freezes
(docs/workflows.md). Nodes, edges between them (a source handle picks a branch), typed input
variables on the start node, outputs on the end nodes.

**Containers** (``iteration``, ``loop``) hold a sub-graph: their child nodes carry the
container's id in ``parent_id`` (Dify's ``parentId``), edges join children of the same
container only, and the container's configuration names its start child (``start_node_id``,
an ``iteration_start`` or ``loop_start`` node). The run's graph is the top level (nodes without
a parent); a container runs its children itself, as one node of that graph.

The shape follows Dify's node data closely (field names, handles, the ``{{#node.field#}}``
template syntax) so that a Dify user reads it without a manual and import/export is a mapping,
not a translation. Type-specific configuration lives in ``Node.config`` and is parsed by
:mod:`shared.workflows.configs`; whole-graph checks are :mod:`shared.workflows.validation`'s.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, GetJsonSchemaHandler, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from pydantic_core import core_schema as core_schemas

from shared.validation import RequestModel

SCHEMA_VERSION: Literal[1] = 1
# Limits of one document (a 422 names the one passed).
MAX_NODES = 200
MAX_EDGES = 400
MAX_DEFINITION_BYTES = 1_000_000

NODE_ID = r"^[A-Za-z0-9_-]{1,64}$"
# A variable or output name: what selectors and templates may name.
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

NodeType = Literal["start", "end", "llm", "knowledge_retrieval", "if_else", "code", "template",
                   "http_request", "variable_aggregator", "iteration", "iteration_start", "loop", "loop_start",
                   "loop_end", "assigner", "question_classifier", "parameter_extractor", "list_operator",
                   "document_extractor", "human_input", "sub_workflow", "answer", "tool", "agent"]
NODE_TYPES: tuple[str, ...] = NodeType.__args__  # type: ignore[attr-defined]
# Nodes that hold a sub-graph, and the type of each one's start child.
CONTAINER_TYPES: dict[str, str] = {"iteration": "iteration_start", "loop": "loop_start"}
# Node types that only exist inside a container of the given type.
CONTAINED_TYPES: dict[str, str] = {"iteration_start": "iteration", "loop_start": "loop", "loop_end": "loop"}

# The types a variable (an input, a node output) may have.
VarType = Literal["string", "number", "boolean", "object", "array[string]", "array[number]",
                  "array[boolean]", "array[object]"]
VAR_TYPES: tuple[str, ...] = VarType.__args__  # type: ignore[attr-defined]

# workflow: a run takes inputs and answers the end nodes' outputs; chatflow (Dify's
# ``advanced-chat``): a chat turn's run, which takes the user's message (``sys.query``), reads
# and changes conversation variables, and answers with its ``answer`` nodes' text.
WorkflowMode = Literal["workflow", "chatflow"]
WORKFLOW_MODES: tuple[str, ...] = WorkflowMode.__args__  # type: ignore[attr-defined]
# The selector head of conversation variables (``["conversation", name]``).
CONVERSATION = "conversation"
MAX_CONVERSATION_VARIABLES = 100

# fail: the node's failure fails the run; default_value: the node succeeds with its declared
# ``default_value`` outputs (plus ``error_message``/``error_type``); fail_branch: the run
# continues on the node's ``fail-branch`` handle instead of ``source``.
ErrorStrategy = Literal["fail", "default_value", "fail_branch"]

# Handles a node's outgoing edges leave from: every node's ``source``; if_else's case ids and
# ``false`` (the else branch); a question classifier's class ids (it has no ``source``); any
# node's ``fail-branch`` under the fail_branch strategy.
SOURCE_HANDLE = "source"
FAIL_BRANCH_HANDLE = "fail-branch"
ELSE_HANDLE = "false"

Selector = list[str]


class Position(RequestModel):
    """Where the node sits on the canvas (kept for editors and for Dify export)."""

    x: float = 0.0
    y: float = 0.0


class Size(RequestModel):
    """A container's size on the canvas (kept for editors and for Dify export)."""

    width: float = Field(default=0.0, ge=0)
    height: float = Field(default=0.0, ge=0)


class RetryPolicy(RequestModel):
    # Attempts in all (1: no retry), as Dify's max_retries + 1.
    max_attempts: int = Field(default=1, ge=1, le=10)
    # Wait between attempts.
    interval_ms: int = Field(default=1000, ge=0, le=60_000)


class Node(RequestModel):
    id: str = Field(pattern=NODE_ID)
    type: NodeType
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    # Type-specific configuration (shared.workflows.configs names each type's model).
    config: dict[str, Any] = Field(default_factory=dict, description=(
        "The node type's configuration: its schema depends on `type` (`x-stratus-config-by-type` names it: "
        "StartConfig, EndConfig, LlmConfig, KnowledgeRetrievalConfig, IfElseConfig, CodeConfig, TemplateConfig, "
        "HttpRequestConfig, VariableAggregatorConfig, IterationConfig, LoopConfig, AssignerConfig, "
        "QuestionClassifierConfig, ParameterExtractorConfig, ListOperatorConfig, DocumentExtractorConfig, "
        "HumanInputConfig, SubWorkflowConfig, AnswerConfig, ToolConfig, AgentNodeConfig; the start "
        "and end nodes of containers take none; see docs/workflows.md). A draft may hold an incomplete "
        "configuration; publishing and running check it."))
    # On the canvas; a container's child is placed relative to its container, as in Dify.
    position: Position | None = None
    # The container (iteration or loop) the node is in; None: the top level of the graph.
    parent_id: str | None = Field(default=None, pattern=NODE_ID)
    # A container's canvas size (None: an editor's default).
    size: Size | None = None
    # None: the node type's default (shared.workflows.configs.DEFAULT_TIMEOUT_S).
    timeout_s: int | None = Field(default=None, ge=1, le=900)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    error_strategy: ErrorStrategy = "fail"
    # Outputs the node answers when it fails under the default_value strategy, by output name.
    default_value: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The schema of each type's ``config`` named beside ``config`` (an annotation, not a
        constraint: drafts are saved before their configuration is complete), so the OpenAPI
        document and docs/ carry every configuration model."""
        from shared.workflows.configs import CONFIGS

        schema = handler(core_schema)
        node = handler.resolve_ref_schema(schema)
        # Inside a list each model becomes a named definition that the annotation refers to.
        node["properties"]["config"]["x-stratus-config-by-type"] = {
            node_type: handler(core_schemas.list_schema(model.__pydantic_core_schema__))["items"]
            for node_type, model in CONFIGS.items()}
        return schema


class Edge(RequestModel):
    source: str = Field(pattern=NODE_ID)
    target: str = Field(pattern=NODE_ID)
    # Which of the source's exits the edge leaves from (see the *_HANDLE constants).
    source_handle: str = Field(default=SOURCE_HANDLE, min_length=1, max_length=64)


class ConversationVariable(RequestModel):
    """A chatflow's variable that lives as long as a conversation: each conversation starts with
    ``default`` (None: the type's empty value), ``assigner`` nodes change it, and a changed value
    is what the conversation's next turn reads (Dify's conversation variables)."""

    name: str = Field(pattern=VARIABLE_NAME)
    type: VarType = "string"
    default: Any = None
    description: str = Field(default="", max_length=1000)


class WorkflowDocument(RequestModel):
    """A workflow's graph. Structural checks beyond field shapes (one start, reachability,
    references, types) are :func:`shared.workflows.validation.validate_document`'s, which
    reports every problem at once."""

    schema_version: Literal[1] = SCHEMA_VERSION
    mode: WorkflowMode = "workflow"
    # Chatflows only (validation refuses them in a workflow).
    conversation_variables: list[ConversationVariable] = Field(default_factory=list,
                                                               max_length=MAX_CONVERSATION_VARIABLES)
    nodes: list[Node] = Field(default_factory=list, max_length=MAX_NODES)
    edges: list[Edge] = Field(default_factory=list, max_length=MAX_EDGES)

    @field_validator("edges")
    @classmethod
    def _distinct_edges(cls, edges: list[Edge]) -> list[Edge]:
        seen: set[tuple[str, str, str]] = set()
        for edge in edges:
            key = (edge.source, edge.source_handle, edge.target)
            if key in seen:
                raise ValueError(f"edge {edge.source}:{edge.source_handle} -> {edge.target} is repeated")
            seen.add(key)
        return edges

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def outgoing(self, node_id: str) -> list[Edge]:
        return [edge for edge in self.edges if edge.source == node_id]

    def incoming(self, node_id: str) -> list[Edge]:
        return [edge for edge in self.edges if edge.target == node_id]

    def children(self, container_id: str | None) -> list[Node]:
        """The nodes directly in ``container_id`` (None: the top level), in document order."""
        return [node for node in self.nodes if node.parent_id == container_id]

    def scope_edges(self, container_id: str | None) -> list[Edge]:
        """The edges between nodes of one scope (a container's children, or the top level)."""
        scope = {node.id for node in self.children(container_id)}
        return [edge for edge in self.edges if edge.source in scope and edge.target in scope]
