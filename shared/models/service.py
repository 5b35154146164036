"""Model catalog use cases: refresh from the shipped files, tenant models with encrypted
credentials and a credential test on save, tenant defaults."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from psycopg.errors import UniqueViolation

from shared.auth.principal import Principal
from shared.db.database import Database
from shared.db.paging import Page, PageRequest
from shared.egress import EgressRefused, egress_policy
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.ids import new_id
from shared.models import repository as repo
from shared.models.api import (
    CreateModel,
    ModelDefaults,
    ModelOut,
    ModelTestResult,
    RefreshResult,
    UpdateDefaults,
    UpdateModel,
)
from shared.models.credentials import Cipher, configured, stored_api_key
from shared.models.errors import endpoint_forbidden
from shared.models.resolver import ModelResolver, ResolvedModel
from shared.models.spec import Capability, CatalogFile, ModelSpec
from shared.observability import tracer

# Runs a minimal call against a model whose spec and credentials are given (the gateway);
# the last argument says the endpoint is the platform's (a catalog model: no egress policy).
Tester = Callable[[uuid.UUID, ModelSpec, str | None, bool], ModelTestResult]

_SPEC_FIELDS = ("display_name", "provider_model", "capabilities", "max_context_tokens", "max_output_tokens",
                "max_batch_size", "max_input_tokens", "dimensions", "default_parameters", "pricing")


def load_catalog_files() -> list[dict[str, Any]]:
    """The shipped catalog as ``models_refresh`` items; a broken file fails loudly."""
    import yaml

    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in sorted(resources.files("shared.models.catalog").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith((".yaml", ".yml")):
            continue
        catalog = CatalogFile.model_validate(yaml.safe_load(entry.read_text()))
        for spec in catalog.models:
            if spec.name in seen:
                raise ValueError(f"model {spec.name} is declared twice in the catalog files")
            seen.add(spec.name)
            items.append({"id": str(new_id()), "name": spec.name, "spec": spec.model_dump(mode="json"),
                          "file": entry.name, "version": catalog.version})
    return items


def to_out(model: ResolvedModel) -> ModelOut:
    spec = model.spec
    return ModelOut(id=model.id, name=model.name, display_name=spec.display_name, source=model.source,  # type: ignore[arg-type]
                    protocol=spec.protocol.value, provider_model=spec.provider_model,
                    capabilities=[c.value for c in spec.capabilities], max_context_tokens=spec.max_context_tokens,
                    max_output_tokens=spec.max_output_tokens, max_batch_size=spec.max_batch_size,
                    max_input_tokens=spec.max_input_tokens, dimensions=spec.dimensions,
                    default_parameters=spec.default_parameters, pricing=spec.pricing,
                    base_url=spec.connection.base_url, configured=configured(model),
                    created_at=model.created_at, updated_at=model.updated_at, version=model.version)


# Each use case is a subsegment of the function's trace. Responses stay out of it: some
# carry secrets shown once (a new API key) and X-Ray documents are size-limited.
_traced = tracer.capture_method(capture_response=False)


class ModelService:
    def __init__(self, db: Database, resolver: ModelResolver, cipher: Callable[[], Cipher], tester: Tester) -> None:
        self._db = db
        self._resolver = resolver
        self._cipher = cipher
        self._tester = tester

    # Catalog -----------------------------------------------------------------------------
    @_traced
    def refresh(self) -> RefreshResult:
        items = load_catalog_files()
        with self._db.transaction() as conn:
            row = repo.refresh_catalog(conn, items)
        self._resolver.invalidate()
        return RefreshResult(model_count=row["model_count"], new_models=row["new_models"],
                             updated_models=row["updated_models"], removed_models=row["removed_models"],
                             refreshed_at=datetime.now(UTC))

    @_traced
    def list(self, principal: Principal, capability: Capability | None, source: str | None,
             page: PageRequest) -> Page[ModelOut]:
        with self._db.transaction(principal.tenant) as conn:
            rows, total = repo.list_models(conn, principal.tenant, capability.value if capability else None,
                                           source, page)
        return Page.of([to_out(ResolvedModel.from_row(r)) for r in rows], page, total)

    @_traced
    def get(self, principal: Principal, name: str) -> ModelOut:
        return to_out(self._fresh(principal.tenant, name))

    def _fresh(self, tenant_id: uuid.UUID, name: str) -> ResolvedModel:
        with self._db.transaction(tenant_id) as conn:
            row = repo.get_model(conn, tenant_id, name)
        if row is None:
            raise NotFound(f"Model {name!r} not found", code="model_not_found", details={"model": name})
        return ResolvedModel.from_row(row)

    # Tenant models -------------------------------------------------------------------------
    @_traced
    def create(self, principal: Principal, request: CreateModel) -> ModelOut:
        tenant_id = principal.tenant
        fields = request.model_dump(include=set(_SPEC_FIELDS))
        spec = self._spec(name=request.name, protocol=request.protocol, base_url=request.base_url,
                          region=request.region,
                          fields={**fields, "display_name": request.display_name or request.name})
        api_key = request.api_key.get_secret_value() if request.api_key else None
        if request.test:
            self._test_or_fail(tenant_id, spec, api_key)
        ciphertext = self._cipher().encrypt(api_key, tenant_id) if api_key else None
        with self._db.transaction(tenant_id) as conn:
            if repo.platform_name_taken(conn, request.name) or repo.get_model(conn, tenant_id, request.name):
                raise Conflict(f"A model named {request.name!r} already exists", code="model_name_taken",
                               details={"name": request.name})
            try:
                row = repo.insert_tenant_model(conn, new_id(), tenant_id, request.name,
                                               spec.model_dump(mode="json"), ciphertext)
            except UniqueViolation as exc:  # created concurrently under the same name
                raise Conflict(f"A model named {request.name!r} already exists", code="model_name_taken",
                               details={"name": request.name}) from exc
        self._resolver.invalidate(tenant_id)
        return to_out(ResolvedModel.from_row(row))

    @_traced
    def update(self, principal: Principal, name: str, request: UpdateModel) -> ModelOut:
        tenant_id = principal.tenant
        current = self._tenant_model(tenant_id, name)
        if request.version is not None and request.version != current.version:
            raise Conflict("The model was changed by someone else; reload and retry", code="model_version_conflict",
                           details={"current_version": current.version})
        changes = request.model_dump(include=set(_SPEC_FIELDS), exclude_none=True)
        base = current.spec.model_dump(mode="json")
        connection = {**base["connection"], **{k: getattr(request, k) for k in ("base_url", "region")
                                                if getattr(request, k) is not None}}
        spec = self._spec(name=current.name, protocol=current.spec.protocol.value, base_url=connection.get("base_url"),
                          region=connection.get("region"),
                          fields={**{k: base[k] for k in _SPEC_FIELDS}, **changes})
        api_key = request.api_key.get_secret_value() if request.api_key else None
        connection_changed = connection != base["connection"]
        if connection_changed and api_key is None and current.has_credentials:
            # The stored key is never sent to a host it was not entered for: a new endpoint
            # needs its key again (otherwise model:manage could read the key out).
            raise ValidationFailed("Changing base_url or region needs the api_key again", code="model_key_required",
                                   details={"fields": [{"field": "body.api_key", "type": "missing",
                                                        "message": "required when base_url or region changes"}]})
        if request.test and (api_key is not None or connection_changed
                             or spec.provider_model != current.spec.provider_model):
            self._test_or_fail(tenant_id, spec, api_key if api_key is not None else self._stored_key(current))
        ciphertext = self._cipher().encrypt(api_key, tenant_id) if api_key else None
        with self._db.transaction(tenant_id) as conn:
            row = repo.update_tenant_model(conn, tenant_id, current.id, spec.model_dump(mode="json"), ciphertext,
                                           api_key is not None, current.version)
        if row is None:
            raise Conflict("The model was changed or removed meanwhile; reload and retry",
                           code="model_version_conflict")
        self._resolver.invalidate(tenant_id)
        return to_out(ResolvedModel.from_row(row))

    @_traced
    def delete(self, principal: Principal, name: str) -> None:
        current = self._tenant_model(principal.tenant, name)
        with self._db.transaction(principal.tenant) as conn:
            defaults = repo.get_defaults(conn, principal.tenant) or {}
            in_use = [f for f in repo.DEFAULT_FIELDS if (defaults.get(f) or "").lower() == current.name.lower()]
            if in_use:
                raise Conflict("The model is a tenant default; choose another default first", code="model_in_use",
                               details={"defaults": in_use})
            repo.soft_delete_tenant_model(conn, principal.tenant, current.id)
        self._resolver.invalidate(principal.tenant)

    @_traced
    def test(self, principal: Principal, name: str) -> ModelTestResult:
        model = self._fresh(principal.tenant, name)
        key = self._stored_key(model) if model.source == "tenant" else None
        return self._tester(principal.tenant, model.spec, key, model.source == "catalog")

    def _stored_key(self, model: ResolvedModel) -> str | None:
        return stored_api_key(self._db, self._cipher, model)

    def _tenant_model(self, tenant_id: uuid.UUID, name: str) -> ResolvedModel:
        model = self._fresh(tenant_id, name)
        if model.source != "tenant":
            from shared.errors import Forbidden

            raise Forbidden("Catalog models are managed by the platform; add a tenant model instead",
                            code="model_read_only", details={"model": name})
        return model

    def _test_or_fail(self, tenant_id: uuid.UUID, spec: ModelSpec, api_key: str | None) -> None:
        result = self._tester(tenant_id, spec, api_key, False)
        if not result.ok:
            error = result.error or {}
            raise ValidationFailed("The model did not answer a test call with these settings",
                                   code="model_test_failed", details={"model": spec.name, "error": error})

    @staticmethod
    def _spec(*, name: str, protocol: str, base_url: str | None, region: str | None,
              fields: dict[str, Any]) -> ModelSpec:
        from pydantic import ValidationError

        try:
            spec = ModelSpec.model_validate({"name": name, "protocol": protocol,
                                             "connection": {"base_url": base_url, "region": region}, **fields})
        except ValidationError as exc:
            raise ValidationFailed.of(exc.errors(), prefix="body") from exc
        if spec.connection.base_url is not None:
            # A tenant's endpoint is called from inside the VPC: refuse internal destinations
            # now (422 naming the rule); names are checked again, resolved, on every call.
            try:
                egress_policy().check_url(spec.connection.base_url)
            except EgressRefused as exc:
                raise endpoint_forbidden(exc, field="body.base_url") from None
        return spec

    # Defaults --------------------------------------------------------------------------------
    @_traced
    def defaults(self, principal: Principal) -> ModelDefaults:
        with self._db.transaction(principal.tenant) as conn:
            row = repo.get_defaults(conn, principal.tenant)
        return self._defaults_out(row)

    @_traced
    def set_defaults(self, principal: Principal, request: UpdateDefaults) -> ModelDefaults:
        tenant_id = principal.tenant
        wanted = {"chat_model": Capability.CHAT, "chat_fallback_model": Capability.CHAT,
                  "embedding_model": Capability.EMBEDDING, "rerank_model": Capability.RERANK}
        errors = []
        for field, capability in wanted.items():
            name = getattr(request, field)
            if name is None:
                continue
            try:
                model = self._fresh(tenant_id, name)
            except NotFound:
                errors.append({"field": f"body.{field}", "type": "model_not_found", "message": f"no model {name!r}"})
                continue
            if not model.spec.has(capability):
                errors.append({"field": f"body.{field}", "type": "model_capability_missing",
                               "message": f"{name!r} cannot do {capability.value}"})
        if errors:
            raise ValidationFailed(details={"fields": errors})
        values = {f: getattr(request, f) for f in repo.DEFAULT_FIELDS}
        with self._db.transaction(tenant_id) as conn:
            row = repo.upsert_defaults(conn, tenant_id, values, request.version)
            if row is None:
                current = repo.get_defaults(conn, tenant_id)
                raise Conflict("The defaults were changed by someone else; reload and retry",
                               code="model_defaults_version_conflict",
                               details={"current_version": current["version"] if current else None})
        self._resolver.invalidate(tenant_id)
        return self._defaults_out(row)

    @staticmethod
    def _defaults_out(row: dict[str, Any] | None) -> ModelDefaults:
        from shared.config import get_settings

        settings = get_settings()
        row = row or {}
        effective = {f: row.get(f) or getattr(settings, f"default_{f}") for f in repo.DEFAULT_FIELDS}
        return ModelDefaults(chat_model=row.get("chat_model"), chat_fallback_model=row.get("chat_fallback_model"),
                             embedding_model=row.get("embedding_model"), rerank_model=row.get("rerank_model"),
                             effective=effective, version=row.get("version", 0))
