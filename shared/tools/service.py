"""Tool provider use cases: create, list, read (with the provider's tools), change (optimistic
version), soft delete, refresh an MCP server's tool list, and test one tool with sample
arguments. Secrets are encrypted with the tenant model keys' cipher (KMS, the tenant in the
encryption context) and never returned."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg.errors import UniqueViolation

from shared.auth.principal import Principal
from shared.db.database import Database
from shared.db.paging import Page, PageRequest
from shared.errors import ValidationFailed
from shared.ids import new_id
from shared.observability import tracer
from shared.tools import repository as repo
from shared.tools.api import (
    AuthIn,
    AuthOut,
    CreateToolProvider,
    TestTool,
    ToolOut,
    ToolProviderOut,
    ToolResultOut,
    ToolsErrorOut,
    UpdateToolProvider,
)
from shared.tools.builtins import BUILTIN_PROVIDER_NAME
from shared.tools.contract import BUILTIN, DEFAULT_TIMEOUT_S, WORKFLOW, CallContext, ToolSpec
from shared.tools.errors import (
    ToolBuiltinReadonly,
    ToolNotFound,
    ToolProviderInvalid,
    ToolProviderNameTaken,
    ToolProviderNotFound,
    ToolProviderVersionConflict,
    problem,
)
from shared.tools.openapi import OpenApiProblem, check_base_url, first_server, read_tool_set
from shared.tools.paths import ProviderRef
from shared.tools.runtime import ProviderTools, ToolRuntime, argument_problems, check_arguments_schema

if TYPE_CHECKING:
    from shared.egress import EgressPolicy
    from shared.models.credentials import Cipher

# A test call's output, as shown.
TEST_OUTPUT_CHARS = 4000
_KEEP = object()  # an update that leaves the stored secret as it is
_SECRET_FIELD = {"api_key": "value", "bearer": "token", "basic": "password"}
_ALLOWED_FIELDS = {"none": set(), "api_key": {"location", "name", "value"}, "bearer": {"token"},
                   "basic": {"username", "password"}}

_traced = tracer.capture_method(capture_response=False)


@dataclass
class _Prepared:
    values: dict[str, Any]
    secret: Any  # str, None (no secret) or _KEEP


def provider_out(row: Mapping[str, Any], tools: ProviderTools | None = None) -> ToolProviderOut:
    auth = row["auth"] or {"type": "none"}
    return ToolProviderOut(
        id=str(row["id"]), name=row["name"], kind=row["kind"], description=row["description"],
        schema=row.get("document"), base_url=row["base_url"], url=row["url"],
        auth=AuthOut.model_validate({"type": auth.get("type", "none"), "in": auth.get("in"), "name": auth.get("name"),
                                     "username": auth.get("username"), "configured": bool(row["has_credentials"])}),
        timeout_s=row["timeout_s"], tool_timeouts=row["tool_timeouts"] or {},
        tools=None if tools is None else [tool_out(spec) for spec in tools.specs],
        tools_error=None if tools is None or tools.error is None else ToolsErrorOut(code=tools.error.code,
                                                                                    message=tools.error.message),
        tools_listed_at=None if tools is None else tools.listed_at,
        created_at=row["created_at"], updated_at=row["updated_at"], version=row["version"])


def tool_out(spec: ToolSpec, operation: Mapping[str, Any] | None = None) -> ToolOut:
    return ToolOut(name=spec.name, ref=str(spec.ref), description=spec.description, parameters=spec.parameters,
                   timeout_s=spec.timeout_s, method=(operation or {}).get("method"),
                   path=(operation or {}).get("path"))


class ToolProviderService:
    def __init__(self, db: Database, cipher: Callable[[], Cipher], runtime: ToolRuntime,
                 policy: Callable[[], EgressPolicy]) -> None:
        self._db = db
        self._cipher = cipher
        self._runtime = runtime
        self._policy = policy

    # --- validation --------------------------------------------------------------------------

    def _url_problem(self, url: str, field: str) -> dict[str, Any] | None:
        from shared.egress import EgressRefused

        reason = check_base_url(url)
        if reason is not None:
            return problem(field, reason, "invalid_url")
        try:
            self._policy().check_url(url)
        except EgressRefused as exc:
            return problem(field, f"{exc}: the platform does not call such addresses (an operator can allow a "
                                  "host with STRATUS_EGRESS_ALLOW)", "egress_refused")
        return None

    @staticmethod
    def _auth(kind: str, auth: AuthIn, current: Mapping[str, Any] | None,
              problems: list[dict[str, Any]]) -> tuple[dict[str, Any], Any]:
        allowed_types = ("none", "bearer") if kind == "mcp" else ("none", "api_key", "bearer", "basic")
        if auth.type not in allowed_types:
            problems.append(problem("body.auth.type", f"a {kind} provider takes auth {' or '.join(allowed_types)}",
                                    "auth_unsupported"))
            return {"type": "none"}, None
        given = {name for name in ("location", "name", "value", "token", "username", "password")
                 if getattr(auth, name) is not None}
        for name in sorted(given - _ALLOWED_FIELDS[auth.type]):
            wire = "in" if name == "location" else name
            problems.append(problem(f"body.auth.{wire}", f"{auth.type} auth takes no {wire}", "extra_forbidden"))
        stored: dict[str, Any] = {"type": auth.type}
        if auth.type == "api_key":
            stored["in"] = auth.location or "header"
            stored["name"] = auth.name
            if not auth.name:
                problems.append(problem("body.auth.name", "api_key auth names the header or query parameter",
                                        "missing"))
        if auth.type == "basic":
            stored["username"] = auth.username
            if not auth.username:
                problems.append(problem("body.auth.username", "basic auth needs a username", "missing"))
        secret_field = _SECRET_FIELD.get(auth.type)
        if secret_field is None:
            return stored, None
        secret = getattr(auth, secret_field)
        if secret is not None:
            return stored, secret
        if current is not None and (current.get("auth") or {}).get("type") == auth.type \
                and current.get("has_credentials"):
            return stored, _KEEP
        problems.append(problem(f"body.auth.{secret_field}", f"{auth.type} auth needs its {secret_field}", "missing"))
        return stored, None

    def _prepare(self, kind: str, fields: Mapping[str, Any], current: Mapping[str, Any] | None) -> _Prepared:
        """The columns a provider's fields give (each problem named), and its secret."""
        problems: list[dict[str, Any]] = []
        values: dict[str, Any] = {}
        if kind == "openapi":
            if fields.get("url") is not None:
                problems.append(problem("body.url", "an openapi provider takes schema and base_url, not url",
                                        "extra_forbidden"))
            operations: list[dict[str, Any]] = list(current["operations"]) if current else []
            default_server = None
            if fields.get("schema") is not None:
                try:
                    document, tool_set = read_tool_set(fields["schema"])
                except OpenApiProblem as exc:
                    problems.append(problem("body.schema", f"{exc.where or 'the document'}: {exc.message}",
                                            "openapi_invalid"))
                else:
                    values["document"] = document
                    operations = [op.to_json() for op in tool_set.operations]
                    values["operations"] = operations
                    default_server = tool_set.default_server
                    for op in tool_set.operations:
                        reason = check_arguments_schema(op.arguments_schema)
                        if reason is not None:
                            problems.append(problem("body.schema", f"operation {op.name} ({op.method} {op.path}): "
                                                                   f"its parameter schemas are not valid JSON Schema: "
                                                                   f"{reason}", "openapi_invalid"))
                            break
            elif current is None:
                problems.append(problem("body.schema", "an openapi provider needs its OpenAPI document", "missing"))
            if "document" not in values:
                default_server = first_server(current["document"]) if current else None
            if fields.get("base_url") is not None:
                base_url = fields["base_url"]
            elif "base_url" in fields or current is None:
                base_url = default_server
            else:
                base_url = current["base_url"]
            if base_url is None:
                if "document" in values or current is not None:
                    problems.append(problem("body.base_url", "the document names no absolute server URL: give the "
                                                             "base URL calls go to", "missing"))
            else:
                found = self._url_problem(str(base_url), "body.base_url")
                if found is not None:
                    problems.append(found)
                values["base_url"] = str(base_url)
            tool_names = {op["name"] for op in operations}
        else:
            for name in ("schema", "base_url"):
                if fields.get(name) is not None:
                    problems.append(problem(f"body.{name}", f"an mcp provider takes url, not {name}",
                                            "extra_forbidden"))
            url = fields.get("url")
            if url is None and current is None:
                problems.append(problem("body.url", "an mcp provider needs the server's URL", "missing"))
            elif url is not None:
                found = self._url_problem(str(url), "body.url")
                if found is not None:
                    problems.append(found)
                values["url"] = url
            tool_names = None
        secret: Any = _KEEP
        if fields.get("auth") is not None:
            values["auth"], secret = self._auth(kind, fields["auth"], current, problems)
        elif current is None:
            values["auth"], secret = {"type": "none"}, None
        if fields.get("tool_timeouts") is not None:
            timeouts = dict(fields["tool_timeouts"])
            if tool_names is not None:
                for name in sorted(set(timeouts) - tool_names):
                    problems.append(problem(f"body.tool_timeouts.{name}", f"the document has no tool {name!r}",
                                            "tool_not_found"))
            values["tool_timeouts"] = timeouts
        for name in ("name", "description", "timeout_s"):
            if fields.get(name) is not None:
                values[name] = fields[name]
        if problems:
            raise ToolProviderInvalid(problems)
        return _Prepared(values, secret)

    def _encrypt(self, tenant_id: uuid.UUID, secret: Any) -> bytes | None:
        return self._cipher().encrypt(secret, tenant_id) if isinstance(secret, str) else None

    # --- CRUD ----------------------------------------------------------------------------------

    @_traced
    def create_provider(self, principal: Principal, body: CreateToolProvider) -> ToolProviderOut:
        tenant_id = principal.tenant
        fields = {**body.model_dump(exclude={"schema_", "auth"}), "schema": body.schema_, "auth": body.auth}
        prepared = self._prepare(body.kind, fields, None)
        ciphertext = self._encrypt(tenant_id, prepared.secret)
        try:
            with self._db.transaction(tenant_id) as conn:
                row = repo.insert_provider(conn, provider_id=new_id(), tenant_id=tenant_id,
                                           values={**prepared.values, "kind": body.kind}, credentials=ciphertext,
                                           created_by=principal.user_id)
        except UniqueViolation as exc:
            raise ToolProviderNameTaken(details={"name": body.name}) from exc
        return provider_out(row)

    @_traced
    def list_providers(self, principal: Principal, kind: str | None, page: PageRequest) -> Page[ToolProviderOut]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            rows, total = repo.list_providers(conn, tenant_id, kind, page)
        return Page.of([provider_out(r) for r in rows], page, total)

    def _row(self, tenant_id: uuid.UUID, provider_id: uuid.UUID) -> dict[str, Any]:
        with self._db.transaction(tenant_id) as conn:
            row = repo.get_provider(conn, tenant_id, provider_id)
        if row is None:
            raise ToolProviderNotFound(details={"tool_id": str(provider_id)})
        return row

    @_traced
    def get_provider(self, principal: Principal, ref: ProviderRef, *, refresh: bool = False) -> ToolProviderOut:
        tenant_id = principal.tenant
        if ref == BUILTIN:
            return self._builtin_out(tenant_id)
        assert isinstance(ref, uuid.UUID)
        row = self._row(tenant_id, ref)
        return self._with_tools(tenant_id, row, refresh=refresh)

    def _with_tools(self, tenant_id: uuid.UUID, row: Mapping[str, Any], *, refresh: bool) -> ToolProviderOut:
        tools = self._runtime.provider_tools(tenant_id, row, refresh=refresh)
        out = provider_out(row, tools)
        if row["kind"] == "openapi" and out.tools is not None:
            by_name = {op["name"]: op for op in row["operations"]}
            out.tools = [tool_out(spec, by_name.get(spec.name)) for spec in tools.specs]
        return out

    def _builtin_out(self, tenant_id: uuid.UUID) -> ToolProviderOut:
        specs = self._runtime.builtin_tools(tenant_id)
        return ToolProviderOut(id=BUILTIN, name=BUILTIN_PROVIDER_NAME, kind="builtin",
                               description="knowledge_search, web_fetch, current_time, and every published workflow "
                                           "of the tenant (its start inputs as arguments)",
                               timeout_s=DEFAULT_TIMEOUT_S, tools=[tool_out(s) for s in specs], version=1)

    @_traced
    def update_provider(self, principal: Principal, ref: ProviderRef, body: UpdateToolProvider) -> ToolProviderOut:
        tenant_id = principal.tenant
        if ref == BUILTIN:
            raise ToolBuiltinReadonly()
        assert isinstance(ref, uuid.UUID)
        current = self._row(tenant_id, ref)
        fields: dict[str, Any] = {name: getattr(body, name) for name in
                                  ("name", "description", "url", "auth", "timeout_s", "tool_timeouts")}
        fields["schema"] = body.schema_
        if "base_url" in body.model_fields_set:
            fields["base_url"] = body.base_url
        prepared = self._prepare(current["kind"], fields, current)
        replace = prepared.secret is not _KEEP
        ciphertext = self._encrypt(tenant_id, prepared.secret)
        try:
            with self._db.transaction(tenant_id) as conn:
                row = repo.update_provider(conn, tenant_id, ref, prepared.values, ciphertext, replace, body.version)
                if row is None:
                    latest = repo.get_provider(conn, tenant_id, ref, full=False)
                    if latest is None:
                        raise ToolProviderNotFound(details={"tool_id": str(ref)})
                    raise ToolProviderVersionConflict(details={"version": latest["version"]})
        except UniqueViolation as exc:
            raise ToolProviderNameTaken(details={"name": body.name}) from exc
        self._runtime.forget(tenant_id, current)
        return provider_out(row)

    @_traced
    def delete_provider(self, principal: Principal, ref: ProviderRef) -> None:
        tenant_id = principal.tenant
        if ref == BUILTIN:
            raise ToolBuiltinReadonly()
        assert isinstance(ref, uuid.UUID)
        current = self._row(tenant_id, ref)
        with self._db.transaction(tenant_id) as conn:
            if not repo.soft_delete_provider(conn, tenant_id, ref):
                raise ToolProviderNotFound(details={"tool_id": str(ref)})
        self._runtime.forget(tenant_id, current)

    @_traced
    def refresh_provider(self, principal: Principal, ref: ProviderRef) -> ToolProviderOut:
        return self.get_provider(principal, ref, refresh=True)

    # --- test ----------------------------------------------------------------------------------

    @_traced
    def test_tool(self, principal: Principal, ref: ProviderRef, body: TestTool) -> ToolResultOut:
        from shared.auth.permissions import require

        tenant_id = principal.tenant
        if ref == BUILTIN:
            specs = self._runtime.builtin_tools(tenant_id)
        else:
            assert isinstance(ref, uuid.UUID)
            row = self._row(tenant_id, ref)
            listed = self._runtime.provider_tools(tenant_id, row)
            if listed.error is not None:
                raise ToolNotFound(f"The tools of {row['name']!r} could not be listed: {listed.error.message}",
                                   details={"field": "body.tool", "tool": body.tool, "reason": listed.error.code})
            specs = listed.specs
        spec = next((s for s in specs if body.tool in (s.name, str(s.ref))), None)
        if spec is None:
            hint = "it has " + (", ".join(s.name for s in specs[:50]) or "no tools")
            raise ToolNotFound(f"No tool {body.tool!r} in this provider: {hint}",
                               details={"field": "body.tool", "tool": body.tool})
        if spec.ref.source == WORKFLOW:
            require(principal, "workflow:run")
        problems = argument_problems(spec.parameters, body.arguments)
        if problems:
            raise ValidationFailed(f"The arguments do not fit {spec.name}'s schema",
                                   code="tool_arguments_invalid",
                                   details={"fields": [{"field": "body." + p.split(":", 1)[0],
                                                        "message": p.split(":", 1)[1].strip(),
                                                        "type": "invalid_argument"} for p in problems]})
        result = self._runtime.call(tenant_id, spec.ref, body.arguments, body.timeout_s,
                                    context=CallContext(knowledge_base_ids=tuple(body.knowledge_base_ids) or None,
                                                        principal=principal, max_output_chars=TEST_OUTPUT_CHARS))
        return ToolResultOut(tool=spec.name, ref=str(spec.ref), status=result.status, output=result.output,
                             truncated=result.truncated, elapsed_ms=result.elapsed_ms, error_code=result.error_code,
                             details=result.details)

