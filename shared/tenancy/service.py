"""Tenancy use cases: tenants, members and roles, API keys, token resolution."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.auth import tokens
from shared.auth.permissions import Role, can_grant, effective_permissions
from shared.auth.principal import Principal
from shared.auth.token_state import TokenStateStore
from shared.db.database import Database
from shared.db.paging import Page, PageRequest
from shared.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from shared.ids import new_id
from shared.observability import tracer
from shared.tenancy import repository as repo
from shared.tenancy.models import (
    ApiKey,
    ApiKeyCreated,
    CreateApiKey,
    CreateMember,
    CreateTenant,
    Member,
    MemberCreated,
    Tenant,
    TenantCreated,
    UpdateMember,
)

if TYPE_CHECKING:
    from shared.agents.contract import AgentResolver
    from shared.workflows.contract import WorkflowResolver

INITIAL_TOKEN_NAME = "initial"  # noqa: S105 - the key's name, not a secret


def _unique_violation() -> type[Exception]:
    from psycopg import errors

    return errors.UniqueViolation


# Each use case is a subsegment of the function's trace. Responses stay out of it: some
# carry secrets shown once (a new API key) and X-Ray documents are size-limited.
_traced = tracer.capture_method(capture_response=False)


class TenancyService:
    def __init__(self, db: Database, token_state: TokenStateStore,
                 agents: Callable[[], AgentResolver] | None = None,
                 workflows: Callable[[], WorkflowResolver] | None = None) -> None:
        self._db = db
        self._token_state = token_state
        # Check that a key's bound agent or workflow exists in the tenant (built on first use:
        # resolving a token, the authorizer's hot path, never needs them).
        self._agents = agents
        self._workflows = workflows

    # Tenants ---------------------------------------------------------------------------
    @_traced
    def create_tenant(self, request: CreateTenant) -> TenantCreated:
        tenant_id = new_id()
        email = request.owner_email or f"owner+{tenant_id}@tenants.stratus.invalid"
        # The transaction runs as the new tenant, so row-level security admits its rows.
        with self._db.transaction(tenant_id) as conn:
            tenant = repo.insert_tenant(conn, tenant_id, request.name)
            user_id = repo.ensure_user(conn, new_id(), email, "")
            member_id = new_id()
            repo.insert_member(conn, member_id, tenant_id, user_id, Role.OWNER, request.owner_name)
            token, _ = self._insert_key(conn, tenant_id, user_id, INITIAL_TOKEN_NAME, [], None, None, None)
            member = repo.get_member(conn, tenant_id, member_id)
        assert member is not None
        return TenantCreated(tenant=Tenant(**tenant), owner=Member(**member), owner_token=token)

    @_traced
    def list_tenants(self, page: PageRequest) -> Page[Tenant]:
        """All tenants, for the platform admin (the route requires platform:admin)."""
        with self._db.transaction() as conn:
            rows, total = repo.list_tenants(conn, page)
        return Page.of([Tenant(**r) for r in rows], page, total)

    @_traced
    def current_tenant(self, principal: Principal) -> Tenant:
        with self._db.transaction(principal.tenant) as conn:
            row = repo.get_tenant(conn, principal.tenant)
        if row is None:
            raise NotFound("Tenant not found", code="tenant_not_found")
        return Tenant(**row)

    # Members -----------------------------------------------------------------------------
    @_traced
    def list_members(self, principal: Principal, page: PageRequest) -> Page[Member]:
        with self._db.transaction(principal.tenant) as conn:
            rows, total = repo.list_members(conn, principal.tenant, page)
        return Page.of([Member(**r) for r in rows], page, total)

    @_traced
    def current_member(self, principal: Principal) -> Member:
        """The member the token belongs to (gone members' tokens are refused before this)."""
        with self._db.transaction(principal.tenant) as conn:
            row = repo.get_member_by_user(conn, principal.tenant, principal.user)
        if row is None:
            raise NotFound("Member not found", code="member_not_found")
        return Member(**row)

    @_traced
    def create_member(self, principal: Principal, request: CreateMember) -> MemberCreated:
        self._check_can_grant(principal, request.role)
        tenant_id = principal.tenant
        token: str | None = None
        with self._db.transaction(tenant_id) as conn:
            user_id = repo.ensure_user(conn, new_id(), request.email, "")
            if repo.get_member_by_user(conn, tenant_id, user_id) is not None:
                raise Conflict("This user is already a member", code="member_already_exists",
                               details={"email": request.email})
            member_id = new_id()
            try:
                repo.insert_member(conn, member_id, tenant_id, user_id, request.role, request.name)
            except _unique_violation() as exc:  # a concurrent invite of the same user
                raise Conflict("This user is already a member", code="member_already_exists") from exc
            if request.issue_token:
                token, _ = self._insert_key(conn, tenant_id, user_id, INITIAL_TOKEN_NAME, [], None, None, None)
            member = repo.get_member(conn, tenant_id, member_id)
        assert member is not None
        return MemberCreated(**member, token=token)

    @_traced
    def update_member(self, principal: Principal, member_id: uuid.UUID, request: UpdateMember) -> Member:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            owners = repo.lock_owners(conn, tenant_id)
            current = self._member_or_404(conn, tenant_id, member_id)
            self._check_can_grant(principal, current["role"])
            self._check_can_grant(principal, request.role)
            if request.version is not None and request.version != current["version"]:
                raise Conflict("The member was changed by someone else; reload and retry",
                               code="member_version_conflict",
                               details={"current_version": current["version"]})
            if current["role"] == Role.OWNER and request.role != Role.OWNER and owners == [member_id]:
                raise Conflict("A tenant keeps at least one owner", code="member_last_owner")
            changed = current["role"] != request.role
            if changed:
                repo.update_member_role(conn, tenant_id, member_id, request.role, request.version)
            key_ids = repo.live_key_ids(conn, tenant_id, current["user_id"]) if changed else []
            member = repo.get_member(conn, tenant_id, member_id)
        # After commit: the new role applies to cached authorizer answers at once.
        self._token_state.set_role(key_ids, request.role)
        assert member is not None
        return Member(**member)

    @_traced
    def delete_member(self, principal: Principal, member_id: uuid.UUID) -> None:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            owners = repo.lock_owners(conn, tenant_id)
            current = self._member_or_404(conn, tenant_id, member_id)
            self._check_can_grant(principal, current["role"])
            if owners == [member_id]:
                raise Conflict("A tenant keeps at least one owner", code="member_last_owner")
            repo.soft_delete_member(conn, tenant_id, member_id)
            revoked = repo.revoke_api_keys(conn, tenant_id, user_id=current["user_id"])
        self._token_state.revoke(revoked)

    # API keys ----------------------------------------------------------------------------
    @_traced
    def create_api_key(self, principal: Principal, request: CreateApiKey) -> ApiKeyCreated:
        if (request.resource_type is None) != (request.resource_id is None):
            raise ValidationFailed(details={"fields": [{
                "field": "body.resource_id", "type": "resource_binding",
                "message": "resource_type and resource_id are given together or not at all"}]})
        if request.expires_at is not None and request.expires_at <= datetime.now(UTC):
            raise ValidationFailed(details={"fields": [{
                "field": "body.expires_at", "type": "expired", "message": "expires_at must be in the future"}]})
        # A key never outgrows the key that made it: an empty scope list means "everything the
        # creator may do", so a scoped creator's keys carry its scopes at most; a key bound to
        # one resource makes keys bound to it; expiry cannot be later than the creator's.
        scopes = list(request.scopes)
        creator_scoped = bool(principal.scopes) and "*" not in principal.scopes
        if creator_scoped and not scopes:
            scopes = sorted(effective_permissions(principal))
        beyond = sorted(set(scopes) - effective_permissions(principal))
        if beyond:
            raise Forbidden("A key cannot carry permissions its creator lacks", code="auth_scope_exceeds_role",
                            details={"scopes": beyond})
        resource_type: str | None = request.resource_type
        resource_id = request.resource_id
        if resource_type is not None and resource_id is not None:
            self._check_bindable(principal.tenant, resource_type, resource_id)
        if principal.resource_type is not None:
            if resource_type is None:
                resource_type, resource_id = principal.resource_type, principal.resource_id
            elif (resource_type, resource_id) != (principal.resource_type, principal.resource_id):
                raise Forbidden("A key bound to one resource can only make keys bound to it",
                                code="auth_resource_binding_exceeded")
        expires_at = request.expires_at
        if principal.expires_at is not None:
            if expires_at is None:
                expires_at = principal.expires_at
            elif expires_at > principal.expires_at:
                raise Forbidden("A key cannot outlive the key that creates it", code="auth_expiry_exceeds_creator",
                                details={"max_expires_at": principal.expires_at.isoformat()})
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            try:
                token, row = self._insert_key(conn, tenant_id, principal.user, request.name, scopes,
                                              resource_type, resource_id, expires_at)
            except _unique_violation() as exc:
                raise Conflict("You already have an API key with this name", code="api_key_name_taken",
                               details={"name": request.name}) from exc
        return ApiKeyCreated(**row, token=token)

    @_traced
    def list_api_keys(self, principal: Principal, page: PageRequest) -> Page[ApiKey]:
        with self._db.transaction(principal.tenant) as conn:
            rows, total = repo.list_api_keys(conn, principal.tenant, self._key_owner_filter(principal), page)
        return Page.of([ApiKey(**r) for r in rows], page, total)

    @_traced
    def delete_api_key(self, principal: Principal, key_id: uuid.UUID) -> None:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            row = repo.get_api_key(conn, tenant_id, key_id)
            owner_filter = self._key_owner_filter(principal)
            if row is None or (owner_filter is not None and row["user_id"] != owner_filter):
                raise NotFound("API key not found", code="api_key_not_found")
            revoked = repo.revoke_api_keys(conn, tenant_id, key_id=key_id)
        self._token_state.revoke(revoked)

    # Authentication ----------------------------------------------------------------------
    @_traced
    def resolve_token(self, token: str) -> Principal:
        """The principal a bearer token stands for (the authorizer); raises Unauthenticated."""
        if not tokens.looks_like_token(token):
            raise Unauthenticated(code="auth_invalid_token")
        with self._db.transaction() as conn:
            row = repo.resolve_token(conn, tokens.hash_token(token))
            if row is None:
                raise Unauthenticated(code="auth_invalid_token")
            if row["kind"] == "api_key":
                repo.touch_token(conn, row["token_id"])
        principal = Principal(
            kind=row["kind"], token_id=row["token_id"], tenant_id=row["tenant_id"], user_id=row["user_id"],
            role=row["role"], scopes=frozenset(row["scopes"] or ()), resource_type=row["resource_type"],
            resource_id=row["resource_id"], expires_at=row["expires_at"])
        if principal.is_expired():
            raise Unauthenticated(code="auth_token_expired")
        return principal

    # Helpers -------------------------------------------------------------------------------
    def _insert_key(self, conn: Any, tenant_id: uuid.UUID, user_id: uuid.UUID, name: str, scopes: list[str],
                    resource_type: str | None, resource_id: uuid.UUID | None,
                    expires_at: datetime | None) -> tuple[str, dict[str, Any]]:
        token = tokens.generate_token()
        row = repo.insert_api_key(conn, key_id=new_id(), tenant_id=tenant_id, user_id=user_id, name=name,
                                  token_hash=tokens.hash_token(token), prefix=tokens.display_prefix(token),
                                  scopes=scopes, resource_type=resource_type, resource_id=resource_id,
                                  expires_at=expires_at)
        return token, row

    @staticmethod
    def _member_or_404(conn: Any, tenant_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
        row = repo.get_member(conn, tenant_id, member_id, for_update=True)
        if row is None:
            raise NotFound("Member not found", code="member_not_found")
        return row

    @staticmethod
    def _check_can_grant(principal: Principal, role: str) -> None:
        if principal.role is None or not can_grant(principal.role, role):
            raise Forbidden(f"Your role cannot manage {role} members", code="member_role_not_grantable",
                            details={"role": role})

    def _check_bindable(self, tenant_id: uuid.UUID, resource_type: str, resource_id: uuid.UUID) -> None:
        """A key is bound only to a resource its tenant has: another tenant's id, or an id
        that names nothing, is 404 like any unseen resource."""
        if resource_type == "agent":
            if self._agents is None:
                raise RuntimeError("TenancyService needs the agents port to bind keys to agents")
            self._agents().agent_id(tenant_id, resource_id)  # 404 agent_not_found
            return
        if self._workflows is None:
            raise RuntimeError("TenancyService needs the workflows port to bind keys to workflows")
        self._workflows().workflow_id(tenant_id, resource_id)  # 404 workflow_not_found

    @staticmethod
    def _key_owner_filter(principal: Principal) -> uuid.UUID | None:
        """Members who manage members see every key of the tenant; others only their own."""
        return None if "member:manage" in effective_permissions(principal) else principal.user


def tenancy_service() -> TenancyService:
    """The service wired to the container's database and cache (ports with production defaults)."""
    from shared.agents.wiring import agent_service
    from shared.auth.token_state import get_token_state
    from shared.db.database import get_database
    from shared.workflows.wiring_api import workflow_service

    return TenancyService(get_database(), get_token_state(), agent_service, workflow_service)
