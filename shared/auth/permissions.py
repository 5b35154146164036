"""Roles, permission strings and the one place that checks them."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from shared.errors import Forbidden

if TYPE_CHECKING:
    from shared.auth.principal import Principal


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    VIEWER = "viewer"


PLATFORM_ADMIN = "platform:admin"

# Every permission a tenant token can carry. Scopes on an API key are a subset of these.
TENANT_PERMISSIONS: frozenset[str] = frozenset({
    "tenant:read", "tenant:write",
    "member:read", "member:manage",
    "apikey:manage",
    "agent:read", "agent:write", "agent:run",
    "knowledge:read", "knowledge:write",
    "workflow:read", "workflow:write", "workflow:run",
    "model:read", "model:manage",
    "tool:read", "tool:write",
    "file:read", "file:write",
    "usage:read",
})

_READ = frozenset(p for p in TENANT_PERMISSIONS if p.endswith(":read"))
_BUILD = _READ | {"apikey:manage", "agent:write", "agent:run", "knowledge:write",
                  "workflow:write", "workflow:run", "tool:write", "file:write"}

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.OWNER: TENANT_PERMISSIONS,
    Role.ADMIN: TENANT_PERMISSIONS - {"tenant:write"},
    Role.DEVELOPER: _BUILD,
    Role.VIEWER: _READ,
}

# Who may grant which role: only owners make owners.
GRANTABLE_ROLES: dict[Role, frozenset[Role]] = {
    Role.OWNER: frozenset(Role),
    Role.ADMIN: frozenset({Role.ADMIN, Role.DEVELOPER, Role.VIEWER}),
    Role.DEVELOPER: frozenset(),
    Role.VIEWER: frozenset(),
}


def effective_permissions(principal: Principal) -> frozenset[str]:
    if principal.is_platform_admin:
        return frozenset({PLATFORM_ADMIN})
    if principal.role is None:
        return frozenset()
    granted = ROLE_PERMISSIONS[Role(principal.role)]
    # A scoped key can do less than its owner, never more.
    if principal.scopes and "*" not in principal.scopes:
        granted = granted & principal.scopes
    return granted


def require(principal: Principal, permission: str) -> None:
    """Raise Forbidden unless the principal holds ``permission`` (or one of ``a|b``)."""
    if permission == PLATFORM_ADMIN:
        if not principal.is_platform_admin:
            raise Forbidden("Platform administrator token required", code="auth_platform_admin_required")
        return
    if principal.is_platform_admin:
        raise Forbidden("This endpoint needs a tenant token; platform admin tokens belong to no tenant",
                        code="auth_tenant_token_required")
    # "a|b": either will do (a Dify app route serves an agent app or a workflow app alike).
    alternatives = permission.split("|")
    if effective_permissions(principal).isdisjoint(alternatives):
        raise Forbidden(f"Missing permission {' or '.join(alternatives)}", code="auth_permission_denied",
                        details={"permission": permission})


def can_grant(granter_role: str, role: str) -> bool:
    return Role(role) in GRANTABLE_ROLES[Role(granter_role)]
