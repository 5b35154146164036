"""Tool provider API shapes: OpenAPI tool sets and MCP servers, their auth (secrets in, never
out), the tools they hold, and a test call's result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.tools.contract import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S, ToolStatus
from shared.validation import INT4_MAX, LaxUUID, RequestModel

ProviderKind = Literal["openapi", "mcp"]
Seconds = Annotated[float, Field(gt=0, le=MAX_TIMEOUT_S)]
_SECRET = 4096
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"


class AuthIn(RequestModel):
    """How calls authenticate. ``type``: ``none``; ``api_key`` (``name`` and ``value``, sent
    ``in`` a header or the query); ``bearer`` (``token``); ``basic`` (``username``,
    ``password``). Secrets are stored encrypted and never returned; on an update, a secret left
    out keeps the stored one (same type)."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["none", "api_key", "bearer", "basic"] = "none"
    location: Literal["header", "query"] | None = Field(default=None, alias="in",
                                                        description="api_key: where the key goes (default header)")
    name: str | None = Field(default=None, pattern=_HEADER_NAME,
                             description="api_key: the header or query parameter name")
    value: str | None = Field(default=None, min_length=1, max_length=_SECRET, description="api_key: the key")
    token: str | None = Field(default=None, min_length=1, max_length=_SECRET, description="bearer: the token")
    username: str | None = Field(default=None, min_length=1, max_length=200, description="basic: the user name")
    password: str | None = Field(default=None, min_length=1, max_length=_SECRET, description="basic: the password")


class AuthOut(BaseModel):
    """The auth a provider uses, without its secret: ``configured`` says one is stored."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    type: Literal["none", "api_key", "bearer", "basic"]
    location: Literal["header", "query"] | None = Field(default=None, alias="in")
    name: str | None = None
    username: str | None = None
    configured: bool = Field(description="A secret (key, token or password) is stored, encrypted")


_SCHEMA_DOC = ("The OpenAPI 3.0 or 3.1 document: an object, or its JSON or YAML text. `$ref`s inside the document "
               "are resolved; each operation becomes a tool")


class CreateToolProvider(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    kind: ProviderKind
    description: str = Field(default="", max_length=2000)
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema", description="openapi: " + _SCHEMA_DOC)
    base_url: str | None = Field(default=None, max_length=2000,
                                 description="openapi: where the operations' paths go (default: the document's "
                                             "first server)")
    url: str | None = Field(default=None, max_length=2000, description="mcp: the server's streamable HTTP endpoint")
    auth: AuthIn = Field(default_factory=AuthIn, description="openapi: none, api_key, bearer or basic; mcp: none "
                                                             "or bearer")
    timeout_s: Seconds = Field(default=DEFAULT_TIMEOUT_S, description="Each call's time limit, in seconds")
    tool_timeouts: dict[str, Seconds] = Field(default_factory=dict, max_length=200,
                                              description="A tool's own time limit (by tool name), over timeout_s")

    model_config = ConfigDict(populate_by_name=True)


class UpdateToolProvider(RequestModel):
    """Change a provider; fields left out stay as they are (``auth`` replaces the auth, a secret
    left out keeping the stored one)."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema", description="openapi: " + _SCHEMA_DOC)
    base_url: str | None = Field(default=None, max_length=2000, description="openapi; null: the document's first "
                                                                           "server")
    url: str | None = Field(default=None, max_length=2000)
    auth: AuthIn | None = None
    timeout_s: Seconds | None = None
    tool_timeouts: dict[str, Seconds] | None = Field(default=None, max_length=200)
    version: int = Field(ge=1, le=INT4_MAX, description="The version read; a stale one answers 409")

    model_config = ConfigDict(populate_by_name=True)


class ToolOut(BaseModel):
    name: str = Field(description="What a model calls it (unique in its provider)")
    ref: str = Field(description="`<provider id>/<name>`, `builtin/<name>` or `workflow/<workflow id>`: what agents "
                                 "and workflow nodes name")
    description: str
    parameters: dict[str, Any] = Field(description="The JSON schema of its arguments (an object)")
    timeout_s: float
    method: str | None = Field(default=None, description="openapi: the HTTP method")
    path: str | None = Field(default=None, description="openapi: the path template")


class ToolsErrorOut(BaseModel):
    code: str
    message: str


class ToolProviderOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str = Field(description="The provider's id (`builtin` for the built-in tools)")
    name: str
    kind: Literal["openapi", "mcp", "builtin"]
    description: str
    schema_: dict[str, Any] | None = Field(default=None, alias="schema", description="openapi: the document, as an "
                                                                                    "object")
    base_url: str | None = Field(default=None, description="openapi: the base URL calls go to")
    url: str | None = Field(default=None, description="mcp: the server's endpoint")
    auth: AuthOut | None = None
    timeout_s: float
    tool_timeouts: dict[str, float] = Field(default_factory=dict)
    # One provider (GET /api/v1/tools/{id}): its tools; lists leave them out (null).
    tools: list[ToolOut] | None = None
    tools_error: ToolsErrorOut | None = Field(default=None, description="mcp: why the tools could not be listed")
    tools_listed_at: datetime | None = Field(default=None, description="mcp: when the cached list was made")
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int


class TestTool(RequestModel):
    tool: str = Field(min_length=1, max_length=200, description="The tool's name in this provider")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Arguments, as its schema says")
    timeout_s: Seconds | None = Field(default=None, description="Below the tool's own limit, if wanted")
    knowledge_base_ids: list[LaxUUID] = Field(default_factory=list, max_length=20,
                                                description="builtin knowledge_search: the knowledge bases to "
                                                            "search (an agent binds its own)")


class ToolResultOut(BaseModel):
    tool: str
    ref: str
    status: ToolStatus
    output: str = Field(description="The tool's answer (or what went wrong), truncated")
    truncated: bool
    elapsed_ms: int
    error_code: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
