"""The tool runtime: the catalog of a tenant's tools and the one way to call any of them
(shared/tools/contract.py), over this container's ports.

- OpenAPI tools become HTTP requests made by the safe fetch path (the fetch function outside
  the VPC in AWS, in-process locally), with the provider's auth applied.
- MCP tools go through the MCP client (the ``tools-mcp`` function in AWS); a server's tool list
  is cached (Redis) per provider version, refreshed on demand.
- Built-ins call the retrieval service, the safe fetch path, the clock; workflow tools start a
  run of the published version and wait for it within the call's timeout.

Every outcome is a :class:`~shared.tools.contract.ToolResult`: nothing the tool does raises.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.tools import repository as repo
from shared.tools.builtins import (
    CURRENT_TIME,
    KNOWLEDGE_SEARCH,
    WEB_FETCH,
    WEB_FETCH_DEFAULT_CHARS,
    WEB_FETCH_MAX_BYTES,
    ArgumentProblem,
    builtin_specs,
    current_time,
    knowledge_base_ids,
    knowledge_output,
    workflow_specs,
)
from shared.tools.contract import (
    BUILTIN,
    DEFAULT_TIMEOUT_S,
    WORKFLOW,
    CallContext,
    ToolRef,
    ToolRefInvalid,
    ToolResult,
    ToolSelection,
    ToolSpec,
    ToolStatus,
)
from shared.tools.mcp import McpClient, McpError, McpServer, McpTool
from shared.tools.openapi import Operation, build_call

if TYPE_CHECKING:
    from shared.auth.principal import Principal
    from shared.cache.ports import KeyValueStore
    from shared.db.database import Database
    from shared.knowledge.contract import Retriever
    from shared.models.credentials import Cipher
    from shared.workflows.fetch.ports import HttpFetcher
    from shared.workflows.published import PublishedWorkflow

logger = logging.getLogger(__name__)
# Names the class's own ``list`` method would shadow in its annotations.
McpTools = list[McpTool]
Specs = list[ToolSpec]

# A server's tool list stays cached this long (a refresh replaces it at once).
MCP_TOOLS_TTL_S = 3600
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml", "+json", "+xml",
               "application/javascript", "application/x-ndjson", "application/yaml")


@dataclass(frozen=True)
class WorkflowOutcome:
    status: str
    run_id: str | None = None
    outputs: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None


class WorkflowTools(Protocol):
    """The workflows domain as the tools see it."""

    def published(self, tenant_id: uuid.UUID, workflow_ids: list[uuid.UUID] | None = None) -> list[PublishedWorkflow]:
        ...

    def run(self, tenant_id: uuid.UUID, principal: Principal | None, workflow_id: uuid.UUID,
            inputs: Mapping[str, Any], timeout_s: float, lineage: Sequence[str] = ()) -> WorkflowOutcome:
        """Run the published version and wait up to ``timeout_s``; ``lineage``: the workflows on
        the call path (a workflow already on it is refused). Domain errors (inputs the workflow
        refuses, a workflow gone, a call cycle) raise ``StratusError``."""
        ...


@dataclass(frozen=True)
class ProviderTools:
    """A provider's tools, or why they could not be listed (an MCP server down)."""

    specs: list[ToolSpec]
    error: McpError | None = None
    listed_at: datetime | None = None


@dataclass
class _Outcome:
    status: ToolStatus
    output: str
    error_code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def argument_problems(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``arguments`` for ``schema`` (JSON Schema 2020-12), each naming its
    path; none when the schema itself is unusable (the tool's server then judges). A ``$ref`` is
    resolved inside the schema only: jsonschema's default would fetch any other URL it names
    (urllib, inside the VPC, past the egress policy), and schemas come from tenants' documents
    and MCP servers."""
    import jsonschema
    import referencing
    import referencing.exceptions

    try:
        validator = jsonschema.Draft202012Validator(dict(schema), registry=referencing.Registry())
        errors = sorted(validator.iter_errors(dict(arguments)), key=lambda e: list(e.path))
    except (jsonschema.SchemaError, referencing.exceptions.Unresolvable, TypeError, ValueError):
        return []
    problems = []
    for error in errors[:10]:
        where = "arguments" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        problems.append(f"{where}: {error.message[:300]}")
    return problems


def check_arguments_schema(schema: Mapping[str, Any]) -> str | None:
    """Why ``schema`` is not a usable JSON schema (None: it is)."""
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(dict(schema))
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        return f"{exc.message[:300]}" + (f" (at {where})" if where else "")
    return None


def auth_headers(auth: Mapping[str, Any], secret: str | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The headers and query parameters a provider's auth adds to a call."""
    kind = auth.get("type", "none")
    if kind == "none" or not secret:
        return [], []
    if kind == "bearer":
        return [("Authorization", f"Bearer {secret}")], []
    if kind == "basic":
        token = base64.b64encode(f"{auth.get('username') or ''}:{secret}".encode()).decode()
        return [("Authorization", f"Basic {token}")], []
    if kind == "api_key":
        pair = (str(auth.get("name")), secret)
        return ([], [pair]) if auth.get("in") == "query" else ([pair], [])
    return [], []


def _clip(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit] + f"\n… [truncated: {len(text) - limit} more characters]", True


class ToolRuntime:
    """:class:`~shared.tools.contract.ToolCatalog` and :class:`~shared.tools.contract.ToolExecutor`."""

    def __init__(self, db: Database, cipher: Callable[[], Cipher], fetcher: Callable[[], HttpFetcher],
                 mcp: Callable[[], McpClient], cache: Callable[[], KeyValueStore],
                 retriever: Callable[[], Retriever], workflows: WorkflowTools, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 default_timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._db = db
        self._cipher = cipher
        self._fetcher = fetcher
        self._mcp = mcp
        self._cache = cache
        self._retriever = retriever
        self._workflows = workflows
        self._clock = clock
        self._default_timeout_s = default_timeout_s

    # --- catalog ---------------------------------------------------------------------------

    def builtin_tools(self, tenant_id: uuid.UUID) -> Specs:
        """The built-ins and the tenant's published workflows."""
        return builtin_specs(self._default_timeout_s) + workflow_specs(self._workflows.published(tenant_id),
                                                                       self._default_timeout_s)

    def provider_tools(self, tenant_id: uuid.UUID, row: Mapping[str, Any], *, refresh: bool = False) -> ProviderTools:
        if row["kind"] == "openapi":
            return ProviderTools([self._openapi_spec(row, Operation.from_json(op)) for op in row["operations"]])
        try:
            tools, listed_at = self._mcp_tools(tenant_id, row, refresh=refresh)
        except McpError as exc:
            return ProviderTools([], exc)
        return ProviderTools([self._mcp_spec(row, tool) for tool in tools], listed_at=listed_at)

    def list(self, tenant_id: uuid.UUID, selections: Sequence[ToolSelection] | None = None, *,
             refresh: bool = False) -> Specs:
        specs: Specs = []
        wanted: dict[str, tuple[str, ...] | None] = {}
        for selection in selections if selections is not None else [ToolSelection(BUILTIN), ToolSelection(WORKFLOW)]:
            current = wanted.get(selection.source, ())
            wanted[selection.source] = None if selection.names is None or current is None \
                else (*current, *selection.names)
        if BUILTIN in wanted:
            specs += [s for s in builtin_specs(self._default_timeout_s) if _chosen(wanted[BUILTIN], s)]
        if WORKFLOW in wanted:
            names = wanted[WORKFLOW]
            ids = None if names is None else [uuid.UUID(n) for n in names if _is_uuid(n)]
            specs += workflow_specs(self._workflows.published(tenant_id, ids), self._default_timeout_s)
        provider_ids = [uuid.UUID(s) for s in wanted if _is_uuid(s)]
        if selections is None or provider_ids:
            with self._db.transaction(tenant_id) as conn:
                rows = repo.all_providers(conn, tenant_id, None if selections is None else provider_ids)
            for row in rows:
                names = None if selections is None else wanted.get(str(row["id"]))
                specs += [s for s in self.provider_tools(tenant_id, row, refresh=refresh).specs if _chosen(names, s)]
        return specs

    def _openapi_spec(self, row: Mapping[str, Any], operation: Operation) -> ToolSpec:
        return ToolSpec(ref=ToolRef(str(row["id"]), operation.name), name=operation.name,
                        description=operation.description, parameters=operation.arguments_schema, kind="openapi",
                        provider_name=row["name"], timeout_s=self._timeout(row, operation.name))

    def _mcp_spec(self, row: Mapping[str, Any], tool: McpTool) -> ToolSpec:
        return ToolSpec(ref=ToolRef(str(row["id"]), tool.name), name=tool.name, description=tool.description,
                        parameters=tool.input_schema, kind="mcp", provider_name=row["name"],
                        timeout_s=self._timeout(row, tool.name))

    @staticmethod
    def _timeout(row: Mapping[str, Any], name: str) -> float:
        return float((row.get("tool_timeouts") or {}).get(name) or row["timeout_s"])

    # --- MCP tool lists ----------------------------------------------------------------------

    @staticmethod
    def _cache_key(tenant_id: uuid.UUID, row: Mapping[str, Any]) -> str:
        return f"tools:mcp:{tenant_id}:{row['id']}:v{row['version']}"

    def _server(self, tenant_id: uuid.UUID, row: Mapping[str, Any]) -> McpServer:
        headers, _ = auth_headers(row["auth"], self._secret(tenant_id, row))
        return McpServer(row["url"], dict(headers))

    def _mcp_tools(self, tenant_id: uuid.UUID, row: Mapping[str, Any], *,
                   refresh: bool) -> tuple[McpTools, datetime]:
        key = self._cache_key(tenant_id, row)
        if not refresh:
            cached = self._cache().get(key)
            if cached:
                data = json.loads(cached)
                return [McpTool.from_json(t) for t in data["tools"]], datetime.fromisoformat(data["listed_at"])
        tools = self._mcp().list_tools(self._server(tenant_id, row), float(row["timeout_s"]))
        listed_at = self._clock()
        self._cache().set(key, json.dumps({"listed_at": listed_at.isoformat(), "tools": [t.to_json() for t in tools]}),
                          ttl_s=MCP_TOOLS_TTL_S)
        return tools, listed_at

    def forget(self, tenant_id: uuid.UUID, row: Mapping[str, Any]) -> None:
        self._cache().delete(self._cache_key(tenant_id, row))

    def _secret(self, tenant_id: uuid.UUID, row: Mapping[str, Any]) -> str | None:
        if not row.get("has_credentials"):
            return None
        with self._db.transaction(tenant_id) as conn:
            ciphertext = repo.get_credentials(conn, tenant_id, row["id"])
        return self._cipher().decrypt(ciphertext, tenant_id) if ciphertext else None

    # --- calling ---------------------------------------------------------------------------

    def call(self, tenant_id: uuid.UUID, ref: ToolRef | str, arguments: Mapping[str, Any],
             timeout_s: float | None = None, *, context: CallContext | None = None) -> ToolResult:
        context = context or CallContext()
        started = time.monotonic()
        try:
            outcome = self._call(tenant_id, ToolRef.parse(ref), arguments, timeout_s, context)
        except ToolRefInvalid as exc:
            outcome = _Outcome("not_found", str(exc), "tool_not_found")
        except Exception:
            logger.exception("tool call failed inside the platform", extra={"tool": str(ref)})
            outcome = _Outcome("error", "The tool failed inside the platform (not the tool's fault); try again later.",
                               "tool_internal_error")
        output, truncated = _clip(outcome.output, context.max_output_chars)
        return ToolResult(status=outcome.status, output=output, elapsed_ms=int((time.monotonic() - started) * 1000),
                          truncated=truncated, error_code=outcome.error_code, details=outcome.details)

    def _call(self, tenant_id: uuid.UUID, ref: ToolRef, arguments: Mapping[str, Any], timeout_s: float | None,
              context: CallContext) -> _Outcome:
        if not isinstance(arguments, Mapping):
            return _Outcome("invalid_arguments", "arguments: give the arguments as an object", "tool_invalid_arguments")
        if ref.source == BUILTIN:
            found = next((s for s in builtin_specs(self._default_timeout_s) if s.name == ref.name), None)
            if found is None:
                return _not_found(f"There is no built-in tool {ref.name!r}")
            builtin: ToolSpec = found
            return self._checked(builtin, arguments, timeout_s,
                                 lambda limit: self._builtin(tenant_id, builtin.name, arguments, limit, context))
        if ref.source == WORKFLOW:
            workflow_id = uuid.UUID(ref.name) if _is_uuid(ref.name) else None
            specs = workflow_specs(self._workflows.published(tenant_id, [workflow_id]), self._default_timeout_s) \
                if workflow_id else []
            if not specs:
                return _not_found(f"No published workflow {ref.name!r} in this tenant")
            spec = specs[0]
            return self._checked(spec, arguments, timeout_s,
                                 lambda limit: self._workflow(tenant_id, workflow_id, arguments, limit, context))
        provider_id = ref.provider_id
        assert provider_id is not None
        with self._db.transaction(tenant_id) as conn:
            row = repo.get_provider(conn, tenant_id, provider_id)
        if row is None:
            return _not_found(f"No tool provider {ref.source} in this tenant")
        if row["kind"] == "openapi":
            operation = next((Operation.from_json(op) for op in row["operations"] if op["name"] == ref.name), None)
            if operation is None:
                return _not_found(f"The provider {row['name']!r} has no tool {ref.name!r}")
            return self._checked(self._openapi_spec(row, operation), arguments, timeout_s,
                                 lambda limit: self._openapi(tenant_id, row, operation, arguments, limit))
        try:
            tools, _ = self._mcp_tools(tenant_id, row, refresh=False)
        except McpError as exc:
            return _mcp_failure(exc)
        tool = next((t for t in tools if t.name == ref.name), None)
        if tool is None:
            return _not_found(f"The MCP server {row['name']!r} has no tool {ref.name!r} (its list may have changed: "
                              "refresh it)")
        return self._checked(self._mcp_spec(row, tool), arguments, timeout_s,
                             lambda limit: self._mcp_call(tenant_id, row, tool.name, arguments, limit))

    @staticmethod
    def _checked(spec: ToolSpec, arguments: Mapping[str, Any], timeout_s: float | None,
                 run: Callable[[float], _Outcome]) -> _Outcome:
        problems = argument_problems(spec.parameters, arguments)
        if problems:
            return _Outcome("invalid_arguments", f"The arguments do not fit {spec.name}'s schema: "
                            + "; ".join(problems), "tool_invalid_arguments", {"problems": problems})
        limit = spec.timeout_s if timeout_s is None else max(0.001, min(timeout_s, spec.timeout_s))
        try:
            return run(limit)
        except ArgumentProblem as exc:
            return _Outcome("invalid_arguments", str(exc), "tool_invalid_arguments")

    # --- kinds -------------------------------------------------------------------------------

    def _openapi(self, tenant_id: uuid.UUID, row: Mapping[str, Any], operation: Operation,
                 arguments: Mapping[str, Any], timeout_s: float) -> _Outcome:
        from shared.workflows.fetch.ports import FetchRequest, FetchTimeouts

        call = build_call(operation, row["base_url"], arguments)
        headers, params = auth_headers(row["auth"], self._secret(tenant_id, row))
        request = FetchRequest(call.method, call.url, headers=[*call.headers, *headers], params=[*call.params, *params],
                               body=call.body, timeouts=_timeouts(timeout_s, FetchTimeouts))
        outcome = self._fetch(request)
        if isinstance(outcome, _Outcome):
            return outcome
        text = outcome.text if _is_text(outcome.headers.get("content-type", "")) else \
            f"[{len(outcome.body)} bytes of {outcome.headers.get('content-type') or 'binary data'}]"
        details = {"status_code": outcome.status_code}
        if 200 <= outcome.status_code < 300:
            return _Outcome("ok", text, details=details)
        return _Outcome("error", f"HTTP {outcome.status_code}: {text}", "tool_http_error", details)

    def _fetch(self, request: Any) -> Any:
        from shared.workflows.fetch.ports import FetchError, FetchRefused, FetchTimeout

        try:
            return self._fetcher().fetch(request)
        except FetchRefused as exc:
            return _Outcome("refused", exc.message, exc.code, {"rule": exc.rule, "host": exc.host})
        except FetchTimeout as exc:
            return _Outcome("timeout", exc.message, exc.code)
        except FetchError as exc:
            return _Outcome("error", exc.message, exc.code)

    def _mcp_call(self, tenant_id: uuid.UUID, row: Mapping[str, Any], name: str, arguments: Mapping[str, Any],
                  timeout_s: float) -> _Outcome:
        try:
            result = self._mcp().call_tool(self._server(tenant_id, row), name, arguments, timeout_s)
        except McpError as exc:
            return _mcp_failure(exc)
        if result.is_error:
            return _Outcome("error", result.text or "The tool reported an error", "tool_error")
        return _Outcome("ok", result.text)

    def _builtin(self, tenant_id: uuid.UUID, name: str, arguments: Mapping[str, Any], timeout_s: float,
                 context: CallContext) -> _Outcome:
        if name == CURRENT_TIME:
            return _Outcome("ok", current_time(self._clock(), arguments))
        if name == WEB_FETCH:
            return self._web_fetch(arguments, timeout_s)
        assert name == KNOWLEDGE_SEARCH
        from shared.errors import StratusError
        from shared.knowledge.contract import RetrievalQuery

        query = RetrievalQuery(knowledge_base_ids=knowledge_base_ids(arguments, context.knowledge_base_ids),
                               text=str(arguments["query"]), top_k=int(arguments.get("top_k") or 5),
                               skip_unavailable=bool(context.knowledge_base_ids))
        try:
            retrieval = self._retriever().retrieve(tenant_id, query)
        except StratusError as exc:
            status: ToolStatus = "not_found" if exc.status == 404 else "error"
            return _Outcome(status, exc.message, exc.code)
        return _Outcome("ok", knowledge_output(retrieval), details={"passages": len(retrieval.passages)})

    def _web_fetch(self, arguments: Mapping[str, Any], timeout_s: float) -> _Outcome:
        from shared.knowledge.parsing.html import html_text
        from shared.workflows.fetch.ports import FetchRequest, FetchTimeouts

        try:
            request = FetchRequest("GET", str(arguments["url"]), headers=[("Accept", "text/html, text/plain;q=0.9, */*;"
                                                                                     "q=0.5")],
                                   timeouts=_timeouts(timeout_s, FetchTimeouts), max_response_bytes=WEB_FETCH_MAX_BYTES)
        except ValueError as exc:
            return _Outcome("invalid_arguments", f"url: {exc}", "tool_invalid_arguments")
        outcome = self._fetch(request)
        if isinstance(outcome, _Outcome):
            return outcome
        content_type = outcome.headers.get("content-type", "").lower()
        details = {"status_code": outcome.status_code, "url": outcome.url}
        if "html" in content_type:
            text = html_text(outcome.text)
        elif _is_text(content_type) or not content_type:
            text = outcome.text
        else:
            return _Outcome("error", f"{outcome.url} is {content_type or 'binary data'}, not a page with text",
                            "tool_unsupported_content", details)
        limit = int(arguments.get("max_chars") or WEB_FETCH_DEFAULT_CHARS)
        text, cut = _clip(text, limit)
        if not 200 <= outcome.status_code < 300:
            return _Outcome("error", f"HTTP {outcome.status_code}: {text}", "tool_http_error", details)
        return _Outcome("ok", text, details={**details, "truncated_text": cut})

    def _workflow(self, tenant_id: uuid.UUID, workflow_id: uuid.UUID | None, arguments: Mapping[str, Any],
                  timeout_s: float, context: CallContext) -> _Outcome:
        from shared.errors import StratusError

        assert workflow_id is not None
        try:
            outcome = self._workflows.run(tenant_id, context.principal, workflow_id, arguments, timeout_s,
                                          lineage=context.lineage)
        except StratusError as exc:
            status: ToolStatus = "invalid_arguments" if exc.status == 422 else \
                "not_found" if exc.status == 404 else "error"
            fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
            message = exc.message + (": " + "; ".join(f"{f.get('field')}: {f.get('message')}" for f in fields[:10])
                                     if isinstance(fields, list) else "")
            return _Outcome(status, message, exc.code)
        details = {"run_id": outcome.run_id, "run_status": outcome.status}
        if outcome.status == "succeeded":
            return _Outcome("ok", json.dumps(outcome.outputs or {}, ensure_ascii=False, default=str), details=details)
        if outcome.status in ("pending", "running", "paused"):
            return _Outcome("timeout", f"The workflow run {outcome.run_id} did not finish within {timeout_s:g} s "
                                       f"(it is {outcome.status}); it goes on, see GET /api/v1/workflow-runs/"
                                       f"{outcome.run_id}", "tool_timeout", details)
        return _Outcome("error", f"The workflow run {outcome.status}: {outcome.error_message or outcome.error_code}",
                        outcome.error_code or "tool_error", details)


def _timeouts(timeout_s: float, kind: Any) -> Any:
    return kind(connect_s=min(10.0, timeout_s), read_s=timeout_s, write_s=min(20.0, timeout_s), total_s=timeout_s)


def _is_text(content_type: str) -> bool:
    lowered = content_type.lower()
    return not lowered or any(marker in lowered for marker in _TEXT_TYPES)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _chosen(names: tuple[str, ...] | None, spec: ToolSpec) -> bool:
    return names is None or spec.name in names or spec.ref.name in names


def _not_found(message: str) -> _Outcome:
    return _Outcome("not_found", message, "tool_not_found")


def _mcp_failure(exc: McpError) -> _Outcome:
    status: ToolStatus = "refused" if exc.code == McpError.REFUSED else \
        "timeout" if exc.code == McpError.TIMEOUT else "error"
    return _Outcome(status, exc.message, exc.code)
