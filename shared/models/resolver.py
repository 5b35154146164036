"""Which model a call uses, read through a short-TTL per-container cache: catalog changes
reach warm functions within ``model_catalog_ttl_s`` (docs/adr/0019)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.db.database import Database
from shared.errors import NotFound
from shared.models import repository as repo
from shared.models.errors import ModelNotConfigured
from shared.models.spec import Capability, ModelSpec


@dataclass(frozen=True)
class ResolvedModel:
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    name: str
    spec: ModelSpec
    source: str
    has_credentials: bool
    created_at: Any
    updated_at: Any
    version: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ResolvedModel:
        return cls(id=row["id"], tenant_id=row["tenant_id"], name=row["name"],
                   spec=ModelSpec.model_validate(row["spec"]), source=row["source"],
                   has_credentials=bool(row["has_credentials"]), created_at=row["created_at"],
                   updated_at=row["updated_at"], version=row["version"])


_DEFAULT_FIELD = {Capability.CHAT: "chat_model", Capability.EMBEDDING: "embedding_model",
                  Capability.RERANK: "rerank_model"}


class ModelResolver:
    def __init__(self, db: Database, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._ttl_s = ttl_s
        self._clock = clock
        self._models: dict[tuple[uuid.UUID, str], tuple[float, ResolvedModel | None]] = {}
        self._defaults: dict[uuid.UUID, tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def get(self, tenant_id: uuid.UUID, name: str, capability: Capability | None = None) -> ResolvedModel:
        key = (tenant_id, name.lower())
        now = self._clock()
        with self._lock:
            cached = self._models.get(key)
        if cached is None or cached[0] <= now:
            with self._db.transaction(tenant_id) as conn:
                row = repo.get_model(conn, tenant_id, name)
            cached = (now + self._ttl_s, ResolvedModel.from_row(row) if row else None)
            with self._lock:
                self._models[key] = cached
        model = cached[1]
        if model is None:
            raise NotFound(f"Model {name!r} not found", code="model_not_found", details={"model": name})
        if capability is not None and not model.spec.has(capability):
            raise ModelNotConfigured(f"Model {name!r} cannot do {capability.value}",
                                     code="model_capability_missing",
                                     details={"model": name, "capability": capability.value})
        return model

    def defaults(self, tenant_id: uuid.UUID) -> dict[str, Any] | None:
        now = self._clock()
        with self._lock:
            cached = self._defaults.get(tenant_id)
        if cached is None or cached[0] <= now:
            with self._db.transaction(tenant_id) as conn:
                row = repo.get_defaults(conn, tenant_id)
            cached = (now + self._ttl_s, row)
            with self._lock:
                self._defaults[tenant_id] = cached
        return cached[1]

    def default_name(self, tenant_id: uuid.UUID, capability: Capability) -> str | None:
        from shared.config import get_settings

        field = _DEFAULT_FIELD[capability]
        chosen = (self.defaults(tenant_id) or {}).get(field)
        return chosen or getattr(get_settings(), f"default_{field}")

    def fallback_name(self, tenant_id: uuid.UUID) -> str | None:
        from shared.config import get_settings

        return (self.defaults(tenant_id) or {}).get("chat_fallback_model") or \
            get_settings().default_chat_fallback_model

    def invalidate(self, tenant_id: uuid.UUID | None = None) -> None:
        """Forget cached entries (this container's own writes are visible at once)."""
        with self._lock:
            if tenant_id is None:
                self._models.clear()
                self._defaults.clear()
            else:
                self._models = {k: v for k, v in self._models.items() if k[0] != tenant_id}
                self._defaults.pop(tenant_id, None)
