"""An agent's configuration: the JSON stored as its draft and snapshotted by each published
version. Every field has a default, so a configuration stored before a field existed still
loads (``schema_version`` names the shape; a future incompatible change bumps it and adds an
upgrade step in :func:`load_config`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from shared.errors import ValidationFailed
from shared.knowledge.contract import RetrievalSettings
from shared.models.spec import NAME_PATTERN
from shared.validation import LaxUUID, RequestModel

# quick-answer: retrieval, then one streamed completion; smart-reasoning: a tool-calling loop
# (docs/agents.md, ADR 0040); chatflow: each turn runs a published chatflow of the tenant
# (docs/workflows.md §12), whose answer nodes' text is the answer.
AgentMode = Literal["quick-answer", "smart-reasoning", "chatflow"]
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
# {{name}} with optional spaces inside the braces.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
# Anything that looks like a placeholder, to report malformed ones ({{ 1x }}, {{a-b}}).
_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
MAX_INPUT_CHARS = 10_000
MAX_USER_VARIABLES = 50
MAX_CLIENT_TOOL_SCHEMA_CHARS = 20_000

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class ModelSettings(RequestModel):
    # None: the tenant's default chat model (PUT /api/v1/models/defaults), resolved at chat time.
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    temperature: float = Field(default=0.7, ge=0, le=2)
    top_p: float = Field(default=1.0, ge=0, le=1)
    # None: the model's own output limit.
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)


class PromptVariable(RequestModel):
    """A ``{{name}}`` of the system prompt, filled from the chat's ``inputs``."""

    name: str = Field(pattern=VARIABLE_NAME)
    label: str = Field(default="", max_length=100)
    required: bool = False
    default: str | None = Field(default=None, max_length=MAX_INPUT_CHARS)


class UserVariable(RequestModel):
    """An agent variable (Coze's "memory"): a value kept per end user, read in the system prompt as
    ``{{name}}`` and by a chatflow as ``sys.user_variables.<name>``; set through the variables API
    (``PUT /api/v1/agents/{agent_id}/variables``). Until set, it is ``default``."""

    name: str = Field(pattern=VARIABLE_NAME)
    description: str = Field(default="", max_length=500)
    default: str = Field(default="", max_length=MAX_INPUT_CHARS)


class KnowledgeSettings(RequestModel):
    knowledge_base_ids: list[LaxUUID] = Field(default_factory=list, max_length=10)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)

    @model_validator(mode="after")
    def _distinct(self) -> KnowledgeSettings:
        if len(set(self.knowledge_base_ids)) != len(self.knowledge_base_ids):
            raise ValueError("knowledge_base_ids must not repeat an id")
        return self


class MemorySettings(RequestModel):
    # Past turns (a user message and its answer) given to the model; 0: none.
    turns: int = Field(default=10, ge=0, le=50)
    # Token budget of that history: the oldest turns are dropped past it.
    max_tokens: int = Field(default=4000, ge=0, le=128_000)


class ChatflowSettings(RequestModel):
    """The chatflow a ``chatflow`` agent runs for each turn: its latest published version (a
    workflow with ``mode: chatflow``; publishing the agent checks it)."""

    workflow_id: LaxUUID | None = None


BUILTIN_TOOL_NAMES = ("knowledge_search", "web_fetch", "current_time")
# A tool's name as a model calls it (OpenAI's and Anthropic's function name rule).
TOOL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
ReasoningMode = Literal["auto", "function_calling", "react"]


class ToolUse(RequestModel):
    """Tools an agent may call (WeKnora's ``AllowedTools``): a tenant tool provider's (``tool_id``
    its id; ``operations`` some of its tools, else all), the built-ins (``tool_id: "builtin"``)
    or published workflows (``tool_id: "workflow"``, ``operations`` naming workflow ids; none:
    every published workflow)."""

    tool_id: str = Field(min_length=1, max_length=100,
                         description="A tool provider's id, `builtin` or `workflow`")
    operations: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=100)

    @model_validator(mode="after")
    def _known_source(self) -> ToolUse:
        import uuid

        if self.tool_id not in ("builtin", "workflow"):
            try:
                self.tool_id = str(uuid.UUID(self.tool_id))
            except ValueError:
                raise ValueError(f"tool_id {self.tool_id!r} is not a tool provider id, \"builtin\" or "
                                 "\"workflow\"") from None
        if self.tool_id == "builtin" and self.operations:
            unknown = [n for n in self.operations if n not in BUILTIN_TOOL_NAMES]
            if unknown:
                raise ValueError(f"{', '.join(map(repr, unknown))} is not a built-in tool (built-ins: "
                                 f"{', '.join(BUILTIN_TOOL_NAMES)})")
        if self.operations is not None and len(set(self.operations)) != len(self.operations):
            raise ValueError("operations must not repeat a name")
        return self


def _tool_use(value: Any) -> Any:
    """A built-in's name (``"web_fetch"``) or a tool reference (``"builtin/web_fetch"``,
    ``"workflow/<id>"``, ``"<provider id>/<tool>"``) is shorthand for a :class:`ToolUse`."""
    if isinstance(value, str):
        if value in BUILTIN_TOOL_NAMES:
            return {"tool_id": "builtin", "operations": [value]}
        source, sep, name = value.partition("/")
        if sep and source and name:
            return {"tool_id": source, "operations": [name]}
        raise ValueError(f"{value!r} is not a built-in tool ({', '.join(BUILTIN_TOOL_NAMES)}) nor a tool "
                         "reference (<provider id>/<tool>, workflow/<workflow id>); use {\"tool_id\", "
                         "\"operations\"} for a provider's tools")
    return value


ToolEntry = Annotated[ToolUse, BeforeValidator(_tool_use, json_schema_input_type=ToolUse | str)]


class ClientTool(RequestModel):
    """A tool the client runs itself (docs/tools.md, ADR 0051): offered to the model like the
    agent's other tools, never executed by Stratus. A call to one pauses the turn
    (``requires_action``) until the client submits the call's output."""

    name: str = Field(pattern=TOOL_NAME, description="The name the model calls it by")
    description: str = Field(default="", max_length=1000)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}},
                                       description="The arguments, as a JSON Schema (an object schema)")

    @model_validator(mode="after")
    def _object_schema(self) -> ClientTool:
        # A structural check only: jsonschema lives in the tools layer, which the agents' CRUD
        # functions do not carry; the model and the client read the schema, Stratus never does.
        schema = self.parameters
        if schema.get("type", "object") != "object":
            raise ValueError("parameters must be a JSON Schema of an object (\"type\": \"object\")")
        properties = schema.get("properties", {})
        if not isinstance(properties, dict) or not all(isinstance(v, dict) for v in properties.values()):
            raise ValueError("parameters.properties must map each argument's name to its schema (an object)")
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(n, str) and n in properties for n in required):
            raise ValueError("parameters.required must list names of parameters.properties")
        if len(json.dumps(schema)) > MAX_CLIENT_TOOL_SCHEMA_CHARS:
            raise ValueError(f"parameters is over {MAX_CLIENT_TOOL_SCHEMA_CHARS} characters of JSON")
        return self


class AgentBudget(RequestModel):
    """Bounds of a smart-reasoning turn: each tool call, and the whole turn in time and tokens
    (past either, the model is asked for its final answer without tools)."""

    tool_timeout_s: float = Field(default=30.0, gt=0, le=300)
    # At most 540 s: the chat function's own timeout is 600 s.
    turn_timeout_s: float = Field(default=300.0, ge=5, le=540)
    turn_tokens: int = Field(default=200_000, ge=1000, le=10_000_000)
    # Tool calls of one model step run at once, at most this many together.
    parallel_tool_calls: int = Field(default=4, ge=1, le=16)


class AgentConfig(RequestModel):
    schema_version: Literal[1] = 1
    mode: AgentMode = "quick-answer"
    model: ModelSettings = Field(default_factory=ModelSettings)
    # Used when the model fails with a retryable error; None: the tenant's fallback, if any.
    fallback_model: str | None = Field(default=None, pattern=NAME_PATTERN)
    system_prompt: str = Field(default=DEFAULT_SYSTEM_PROMPT, max_length=20_000)
    variables: list[PromptVariable] = Field(default_factory=list, max_length=20)
    # Values kept per end user (docs/variables.md); names distinct from ``variables`` (checked
    # when the agent is published).
    user_variables: list[UserVariable] = Field(default_factory=list, max_length=MAX_USER_VARIABLES)
    opening_message: str = Field(default="", max_length=2000)
    suggested_questions: list[Question] = Field(default_factory=list, max_length=10)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    # Rewrite a follow-up question into a standalone one before retrieval.
    query_rewrite: bool = False
    # mode "chatflow": the chatflow each turn runs (the fields above, but opening_message and
    # suggested_questions, are then the chatflow's business and ignored).
    chatflow: ChatflowSettings = Field(default_factory=ChatflowSettings)
    # mode "smart-reasoning": the tools the agent may call (a built-in's name, a tool reference,
    # or {"tool_id", "operations"}); with knowledge bases, knowledge_search is always among them.
    tools: list[ToolEntry] = Field(default_factory=list, max_length=50)
    # Rounds of tool calls in a turn; then the model answers without tools.
    max_iterations: int = Field(default=10, ge=1, le=50)
    # auto: the model decides; none: no tools; required: the first step must call one; or a
    # tool's name: the first step calls that tool.
    tool_choice: str = Field(default="auto", pattern=TOOL_NAME)
    # function_calling: the model's native tool calls; react: the Thought/Action/Observation
    # text protocol; auto: native when the model declares function_calling, else ReAct.
    reasoning: ReasoningMode = "auto"
    # mode "smart-reasoning": tools the client runs (a call pauses the turn until the client
    # submits its output); names distinct from each other and from the agent's tools.
    client_tools: list[ClientTool] = Field(default_factory=list, max_length=20)
    budget: AgentBudget = Field(default_factory=AgentBudget)

    @model_validator(mode="after")
    def _placeholders_declared(self) -> AgentConfig:
        client_names = [t.name for t in self.client_tools]
        if len(set(client_names)) != len(client_names):
            raise ValueError("client_tools must not repeat a name")
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ValueError("variables must not repeat a name")
        for raw in _ANY_PLACEHOLDER.findall(self.system_prompt):
            if not re.fullmatch(r"\s*[A-Za-z_][A-Za-z0-9_]{0,63}\s*", raw):
                raise ValueError(f"system_prompt: {{{{{raw}}}}} is not a valid placeholder "
                                 "(letters, digits and _; not starting with a digit)")
        undeclared = sorted(set(placeholders(self.system_prompt)) - set(names)
                            - {v.name for v in self.user_variables})
        if undeclared:
            raise ValueError("system_prompt uses undeclared variables: " + ", ".join(undeclared)
                             + " (declare each in variables or user_variables)")
        return self


def placeholders(template: str) -> list[str]:
    """The variable names a template uses, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def load_config(stored: Mapping[str, Any]) -> AgentConfig:
    """A stored configuration (draft or version), with defaults for fields added since."""
    return AgentConfig.model_validate(dict(stored))


def dump_config(config: AgentConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")


def _input_error(name: str, message: str, kind: str) -> ValidationFailed:
    return ValidationFailed(message, code="agent_input_invalid",
                            details={"fields": [{"field": f"inputs.{name}", "type": kind, "message": message}]})


def user_variable_problems(config: AgentConfig) -> list[dict[str, str]]:
    """What publishing refuses in the agent variables, each naming its field: a name declared
    twice, or also a prompt variable (one ``{{name}}`` must mean one thing)."""
    problems: list[dict[str, str]] = []
    prompt_names = {v.name for v in config.variables}
    seen: set[str] = set()
    for index, variable in enumerate(config.user_variables):
        field = f"config.user_variables[{index}].name"
        if variable.name in seen:
            problems.append({"field": field, "type": "duplicate",
                             "message": f"The agent variable {variable.name!r} is declared twice"})
        elif variable.name in prompt_names:
            problems.append({"field": field, "type": "duplicate",
                             "message": f"{variable.name!r} is also a prompt variable (config.variables): "
                                        "rename one of them"})
        seen.add(variable.name)
    return problems


def user_variable_values(config: AgentConfig, stored: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each declared agent variable's value: the one kept for the end user, else its default."""
    stored = stored or {}
    return {v.name: stored.get(v.name, v.default) for v in config.user_variables}


def resolve_user_variables(config: AgentConfig, inputs: Mapping[str, Any] | None = None,
                           stored: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each agent variable's value for a turn: the request's ``inputs`` (a non-empty string or
    number), else the value stored for the end user, else the default. A bad input is a 422
    naming ``inputs.<name>``."""
    inputs = inputs or {}
    values: dict[str, str] = {}
    for name, kept in user_variable_values(config, stored).items():
        raw = inputs.get(name)
        if raw is None or raw == "":
            values[name] = kept
            continue
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise _input_error(name, f"{name} must be a string or a number", "type_error")
        if len(str(raw)) > MAX_INPUT_CHARS:
            raise _input_error(name, f"{name} is longer than {MAX_INPUT_CHARS} characters", "string_too_long")
        values[name] = str(raw)
    return values


def render_system_prompt(config: AgentConfig, inputs: Mapping[str, Any] | None = None,
                         stored: Mapping[str, str] | None = None) -> str:
    """The system prompt with each ``{{variable}}`` filled. A prompt variable: from ``inputs``
    (else its default; else empty); a required one without a value is a 422 naming
    ``inputs.<name>``. An agent variable: from ``inputs`` (the request), else the value
    ``stored`` for the end user, else its default. Values are inserted as they are, in one pass:
    a value holding ``{{x}}`` is not expanded."""
    inputs = inputs or {}
    values = resolve_user_variables(config, inputs, stored)
    for variable in config.variables:
        raw = inputs.get(variable.name)
        if raw is None or raw == "":
            raw = variable.default
        if isinstance(raw, bool) or not isinstance(raw, str | int | float | type(None)):
            raise _input_error(variable.name, f"{variable.name} must be a string or a number", "type_error")
        value = "" if raw is None else str(raw)
        if variable.required and not value.strip():
            raise _input_error(variable.name, f"{variable.label or variable.name} is required", "missing")
        if len(value) > MAX_INPUT_CHARS:
            raise _input_error(variable.name, f"{variable.name} is longer than {MAX_INPUT_CHARS} characters",
                               "string_too_long")
        values[variable.name] = value
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), config.system_prompt)
