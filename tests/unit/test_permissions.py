from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.auth.permissions import ROLE_PERMISSIONS, Role, can_grant, effective_permissions, require
from shared.auth.principal import Principal
from shared.errors import Forbidden


def principal(role: str | None = "developer", scopes: frozenset[str] = frozenset(), kind: str = "api_key") -> Principal:
    return Principal(kind=kind, token_id=uuid.uuid4(), tenant_id=uuid.uuid4(), user_id=uuid.uuid4(),  # type: ignore[arg-type]
                     role=role, scopes=scopes)


def test_roles_are_ordered_by_power() -> None:
    assert ROLE_PERMISSIONS[Role.VIEWER] < ROLE_PERMISSIONS[Role.DEVELOPER] < ROLE_PERMISSIONS[Role.ADMIN]
    assert ROLE_PERMISSIONS[Role.ADMIN] < ROLE_PERMISSIONS[Role.OWNER]
    assert all(p.endswith(":read") for p in ROLE_PERMISSIONS[Role.VIEWER])


def test_scopes_narrow_but_never_widen() -> None:
    viewer = principal("viewer", frozenset({"tenant:read", "member:manage"}))
    assert effective_permissions(viewer) == {"tenant:read"}
    with pytest.raises(Forbidden) as err:
        require(viewer, "member:manage")
    assert err.value.code == "auth_permission_denied"


def test_platform_admin_is_not_a_tenant_member() -> None:
    admin = principal(None, frozenset({"*"}), kind="platform_admin")
    require(admin, "platform:admin")
    with pytest.raises(Forbidden) as err:
        require(admin, "tenant:read")
    assert err.value.code == "auth_tenant_token_required"
    with pytest.raises(Forbidden):
        require(principal("owner"), "platform:admin")


def test_only_owners_grant_owner() -> None:
    assert can_grant("owner", "owner") and not can_grant("admin", "owner")
    assert can_grant("admin", "developer") and not can_grant("developer", "viewer")


def test_principal_context_round_trip() -> None:
    original = Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=uuid.uuid4(), user_id=uuid.uuid4(),
                         role="admin", scopes=frozenset({"agent:read", "tenant:read"}), resource_type="agent",
                         resource_id=uuid.uuid4(), expires_at=datetime.now(UTC) + timedelta(days=1))
    context = original.to_context()
    assert all(isinstance(v, str) for v in context.values())  # API Gateway context values
    assert Principal.from_context(context) == original
    assert not original.is_expired()
    assert Principal.from_context({**context, "expires_at": "2000-01-01T00:00:00+00:00"}).is_expired()


def test_either_of_two_permissions_will_do_when_a_route_names_both() -> None:
    require(principal("developer", frozenset({"workflow:run"})), "agent:run|workflow:run")
    require(principal("developer", frozenset({"agent:run"})), "agent:run|workflow:run")
    with pytest.raises(Forbidden) as err:
        require(principal("developer", frozenset({"file:write"})), "agent:run|workflow:run")
    assert err.value.message == "Missing permission agent:run or workflow:run"
    with pytest.raises(Forbidden):
        require(principal("viewer"), "agent:run|workflow:run")
