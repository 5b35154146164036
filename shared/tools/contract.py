"""What the tools domain offers the others (the agent loop, workflow tool and agent nodes):
the tools a tenant can call, with their argument schemas (:class:`ToolCatalog`), and one way
to call any of them (:class:`ToolExecutor`).

A call never raises for what the tool did: a refused URL, a timeout, an HTTP error, an MCP
error result, arguments that do not fit the schema, a tool that went away, are all a
:class:`ToolResult` whose ``status`` says which and whose ``output`` says what happened, so
an agent hands it to its model as an observation and goes on.

Tools are named by a :class:`ToolRef`: ``<provider id>/<tool name>`` for a tenant's OpenAPI or
MCP provider, ``builtin/<name>`` for a built-in (``knowledge_search``, ``web_fetch``,
``current_time``), ``workflow/<workflow id>`` for a published workflow.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from shared.auth.principal import Principal

BUILTIN = "builtin"
WORKFLOW = "workflow"
# client: a tool the client runs (an agent's client_tools, docs/adr/0051): offered, never executed here.
ToolKind = Literal["openapi", "mcp", "builtin", "workflow", "client"]
# ok: the tool answered; error: it answered with a failure (an HTTP error status, an MCP error
# result, a failed workflow run) or could not be reached; timeout: no answer in time; refused:
# the egress policy refused the destination; invalid_arguments: the arguments do not fit the
# tool's schema (nothing was called); not_found: no such tool (any more) in the tenant.
ToolStatus = Literal["ok", "error", "timeout", "refused", "invalid_arguments", "not_found"]
TOOL_STATUSES: tuple[str, ...] = ("ok", "error", "timeout", "refused", "invalid_arguments", "not_found")
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 300.0
# What a result's output holds at most unless the caller asks for less.
DEFAULT_MAX_OUTPUT_CHARS = 16_000


class ToolRefInvalid(ValueError):
    pass


@dataclass(frozen=True)
class ToolRef:
    """A tool: ``source`` is a provider's id, ``builtin`` or ``workflow``; ``name`` the tool's
    name within it (a workflow's id for ``workflow``)."""

    source: str
    name: str

    def __str__(self) -> str:
        return f"{self.source}/{self.name}"

    @property
    def provider_id(self) -> uuid.UUID | None:
        if self.source in (BUILTIN, WORKFLOW):
            return None
        return uuid.UUID(self.source)

    @classmethod
    def parse(cls, text: str | ToolRef) -> ToolRef:
        if isinstance(text, ToolRef):
            return text
        source, sep, name = (text or "").partition("/")
        if not sep or not source or not name:
            raise ToolRefInvalid(f"{text!r} is not a tool reference: give <provider id>/<tool>, builtin/<name> "
                                 "or workflow/<workflow id>")
        if source not in (BUILTIN, WORKFLOW):
            try:
                source = str(uuid.UUID(source))
            except ValueError:
                raise ToolRefInvalid(f"{source!r} is not a tool provider id") from None
        return cls(source, name)


@dataclass(frozen=True)
class ToolSpec:
    """A callable tool: ``name`` is what a model calls it (unique in its provider),
    ``parameters`` the JSON schema of its arguments (an object)."""

    ref: ToolRef
    name: str
    description: str
    parameters: dict[str, Any]
    kind: ToolKind
    provider_name: str
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class ToolResult:
    status: ToolStatus
    # Text for a model: the tool's answer, or what went wrong and what to do about it.
    output: str
    elapsed_ms: int
    # The output was cut at the caller's max_output_chars.
    truncated: bool = False
    # A machine code for a failure (``http_request_refused``, ``tool_timeout``...).
    error_code: str | None = None
    # Structured facts about the call (an HTTP status code, a workflow run id...).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class ToolSelection:
    """Tools an agent or node may use: one provider's (all, or the ``names`` given), the
    built-ins (``source="builtin"``), or published workflows (``source="workflow"``)."""

    source: str
    names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CallContext:
    """What a caller binds: the knowledge bases ``knowledge_search`` searches (an agent's own,
    none when it has none; None: the arguments name them), who a workflow tool's run is recorded
    for, and how much output to keep."""

    knowledge_base_ids: tuple[uuid.UUID, ...] | None = None
    principal: Principal | None = None
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS
    # The workflows whose runs lead to this call (a tool node's run and the runs that started
    # it through workflow tools), outermost first: a workflow tool refuses one already on it.
    lineage: tuple[str, ...] = ()


class ToolCatalog(Protocol):
    def list(self, tenant_id: uuid.UUID, selections: Sequence[ToolSelection] | None = None, *,
             refresh: bool = False) -> list[ToolSpec]:
        """The tools of the selections (None: every tool of the tenant). A provider whose tools
        cannot be listed (an MCP server down) contributes none; ``refresh`` re-lists MCP
        servers instead of using the cached lists."""
        ...


class ToolExecutor(Protocol):
    def call(self, tenant_id: uuid.UUID, ref: ToolRef | str, arguments: Mapping[str, Any],
             timeout_s: float | None = None, *, context: CallContext | None = None) -> ToolResult:
        """Call one tool. ``timeout_s`` bounds the call (the tool's own timeout bounds it too).
        Never raises for the tool's outcome: see :class:`ToolResult`."""
        ...
