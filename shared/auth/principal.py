"""Who is calling: resolved by the authorizer, carried in its (cacheable) context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from shared.errors import Unauthenticated

Kind = Literal["api_key", "platform_admin"]


@dataclass(frozen=True)
class Principal:
    kind: Kind
    token_id: uuid.UUID
    tenant_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    role: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    expires_at: datetime | None = None

    @property
    def is_platform_admin(self) -> bool:
        return self.kind == "platform_admin"

    @property
    def tenant(self) -> uuid.UUID:
        if self.tenant_id is None:
            raise Unauthenticated("Token is not bound to a tenant", code="auth_tenant_token_required")
        return self.tenant_id

    @property
    def user(self) -> uuid.UUID:
        if self.user_id is None:
            raise Unauthenticated("Token is not bound to a user", code="auth_tenant_token_required")
        return self.user_id

    def with_role(self, role: str) -> Principal:
        return replace(self, role=role)

    # API Gateway authorizer context values must be strings, numbers or booleans.
    def to_context(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "token_id": str(self.token_id),
            "tenant_id": str(self.tenant_id or ""),
            "user_id": str(self.user_id or ""),
            "role": self.role or "",
            "scopes": " ".join(sorted(self.scopes)),
            "resource_type": self.resource_type or "",
            "resource_id": str(self.resource_id or ""),
            "expires_at": self.expires_at.isoformat() if self.expires_at else "",
        }

    @classmethod
    def from_context(cls, ctx: dict[str, Any]) -> Principal:
        def opt_id(key: str) -> uuid.UUID | None:
            value = ctx.get(key) or ""
            return uuid.UUID(value) if value else None

        expires = ctx.get("expires_at") or ""
        kind: Kind = "platform_admin" if ctx.get("kind") == "platform_admin" else "api_key"
        return cls(
            kind=kind,
            token_id=uuid.UUID(ctx["token_id"]),
            tenant_id=opt_id("tenant_id"),
            user_id=opt_id("user_id"),
            role=ctx.get("role") or None,
            scopes=frozenset(str(ctx.get("scopes") or "").split()),
            resource_type=ctx.get("resource_type") or None,
            resource_id=opt_id("resource_id"),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))
