"""Tenants, members, roles and API keys through the local gateway: every status code of
the contract, tenant isolation, and that bad input changes nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.integration.conftest import bearer
from tests.integration.test_api_platform import assert_error

Sql = Callable[..., list[tuple[Any, ...]]]


def counts(admin_sql: Sql) -> tuple[int, ...]:
    row = admin_sql("""SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM members),
                              (SELECT count(*) FROM api_keys), (SELECT count(*) FROM users),
                              (SELECT coalesce(sum(version), 0) FROM members)""")[0]
    return tuple(int(v) for v in row)


# Tenants ----------------------------------------------------------------------------------
def test_admin_creates_tenant_whose_owner_token_works(client: TestClient, new_tenant: Callable[..., Any]) -> None:
    created = new_tenant("Acme")
    assert created["tenant"]["name"] == "Acme"
    assert created["owner"]["role"] == "owner"
    assert created["owner_token"].startswith("pat_")
    response = client.get("/api/v1/tenants/current", headers=bearer(created["owner_token"]))
    assert response.status_code == 200
    assert response.json()["data"]["id"] == created["tenant"]["id"]


def test_only_platform_admin_creates_tenants(client: TestClient, new_tenant: Callable[..., Any],
                                             admin_sql: Sql) -> None:
    owner_token = new_tenant()["owner_token"]
    before = counts(admin_sql)
    assert_error(client.post("/api/v1/tenants", json={"name": "x"}, headers=bearer(owner_token)), 403,
                 "auth_platform_admin_required")
    assert counts(admin_sql) == before


@pytest.mark.parametrize(("raw", "status", "code"), [
    ("{not json", 400, "biz_malformed_json"),
    ('{"name": ""}', 422, "biz_validation_failed"),
    ('{"name": "ok", "surprise": 1}', 422, "biz_validation_failed"),
    ("[]", 422, "biz_validation_failed"),
    ('{"name": "ok", "owner_email": "not-an-email"}', 422, "biz_validation_failed"),
])
def test_bad_tenant_bodies_change_nothing(client: TestClient, admin_token: str, admin_sql: Sql,
                                          raw: str, status: int, code: str) -> None:
    before = counts(admin_sql)
    response = client.post("/api/v1/tenants", content=raw,
                           headers={**bearer(admin_token), "content-type": "application/json"})
    body = assert_error(response, status, code)
    if status == 422:
        assert body["details"]["fields"], body
        assert all({"field", "message", "type"} <= set(f) for f in body["details"]["fields"])
    assert counts(admin_sql) == before


def test_validation_details_name_the_field(client: TestClient, admin_token: str) -> None:
    body = assert_error(client.post("/api/v1/tenants", json={"name": ""}, headers=bearer(admin_token)), 422,
                        "biz_validation_failed")
    assert [f["field"] for f in body["details"]["fields"]] == ["body.name"]


def test_body_over_the_limit_is_413(client: TestClient, admin_token: str, admin_sql: Sql) -> None:
    before = counts(admin_sql)
    big = '{"name": "' + "x" * 1_100_000 + '"}'
    response = client.post("/api/v1/tenants", content=big,
                           headers={**bearer(admin_token), "content-type": "application/json"})
    assert_error(response, 413, "biz_payload_too_large")
    assert counts(admin_sql) == before


# API keys ---------------------------------------------------------------------------------
def test_api_key_lifecycle_and_immediate_revocation(client: TestClient, new_tenant: Callable[..., Any],
                                                    admin_sql: Sql) -> None:
    owner = bearer(new_tenant()["owner_token"])
    response = client.post("/api/v1/api-keys", json={"name": "ci", "scopes": ["tenant:read"]}, headers=owner)
    assert response.status_code == 201, response.text
    key = response.json()["data"]
    token = key["token"]
    assert token.startswith("pat_") and key["prefix"] == token[:10] and key["scopes"] == ["tenant:read"]
    # Only a hash is stored.
    assert admin_sql("SELECT count(*) FROM api_keys WHERE prefix = %s AND token_hash = %s",
                     (key["prefix"], token.encode()))[0][0] == 0
    listed = client.get("/api/v1/api-keys", headers=owner).json()
    assert key["id"] in [k["id"] for k in listed["data"]]
    assert "token" not in str(listed["data"]) and "hash" not in str(listed["data"])
    # The key works, and its scope limits it.
    assert client.get("/api/v1/tenants/current", headers=bearer(token)).status_code == 200
    assert_error(client.get("/api/v1/members", headers=bearer(token)), 403, "auth_permission_denied")
    # Revoked: refused on the very next request although the authorizer answer is cached.
    deleted = client.delete(f"/api/v1/api-keys/{key['id']}", headers=owner)
    # A 204 has no body, so no body headers either.
    assert deleted.status_code == 204 and deleted.content == b""
    assert "content-type" not in deleted.headers and deleted.headers.get("content-length", "0") == "0"
    assert deleted.headers["x-request-id"]
    assert_error(client.get("/api/v1/tenants/current", headers=bearer(token)), 401, "auth_token_revoked")
    assert_error(client.delete(f"/api/v1/api-keys/{key['id']}", headers=owner), 404, "api_key_not_found")
    assert admin_sql("SELECT last_used_at IS NOT NULL, revoked_at IS NOT NULL FROM api_keys WHERE id = %s",
                     (key["id"],))[0] == (True, True)


def test_api_key_rules(client: TestClient, new_tenant: Callable[..., Any], admin_sql: Sql) -> None:
    owner = bearer(new_tenant()["owner_token"])
    assert client.post("/api/v1/api-keys", json={"name": "dup"}, headers=owner).status_code == 201
    before = counts(admin_sql)
    assert_error(client.post("/api/v1/api-keys", json={"name": "DUP"}, headers=owner), 409, "api_key_name_taken")
    assert_error(client.post("/api/v1/api-keys", json={"name": "s", "scopes": ["root:all"]}, headers=owner), 422,
                 "biz_validation_failed")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert_error(client.post("/api/v1/api-keys", json={"name": "old", "expires_at": past}, headers=owner), 422,
                 "biz_validation_failed")
    assert_error(client.post("/api/v1/api-keys", json={"name": "naive", "expires_at": "2030-01-01T00:00:00"},
                             headers=owner), 422, "biz_validation_failed")
    assert_error(client.post("/api/v1/api-keys", json={"name": "half", "resource_type": "agent"},
                             headers=owner), 422, "biz_validation_failed")
    assert counts(admin_sql) == before


def test_a_key_binds_only_to_a_resource_of_its_tenant(client: TestClient, new_tenant: Callable[..., Any],
                                                      admin_sql: Sql) -> None:
    """Another tenant's agent, or an id naming no agent or workflow, is 404 (workflows:
    tests/integration/test_workflows_api.py)."""
    owner, other = bearer(new_tenant()["owner_token"]), bearer(new_tenant()["owner_token"])
    theirs = client.post("/api/v1/agents", json={"name": "theirs", "config": {}}, headers=other).json()["data"]
    mine = client.post("/api/v1/agents", json={"name": "mine", "config": {}}, headers=owner).json()["data"]
    before = counts(admin_sql)
    for resource_id in (theirs["id"], str(uuid.uuid4())):
        body = assert_error(client.post("/api/v1/api-keys", json={
            "name": "bound", "resource_type": "agent", "resource_id": resource_id}, headers=owner),
            404, "agent_not_found")
        assert theirs["name"] not in str(body)
    assert_error(client.post("/api/v1/api-keys", json={"name": "flow", "resource_type": "workflow",
                                                       "resource_id": str(uuid.uuid4())}, headers=owner),
                 404, "workflow_not_found")
    assert counts(admin_sql) == before
    key = client.post("/api/v1/api-keys", json={"name": "bound", "resource_type": "agent",
                                                "resource_id": mine["id"]}, headers=owner)
    assert key.status_code == 201, key.text
    assert (key.json()["data"]["resource_type"], key.json()["data"]["resource_id"]) == ("agent", mine["id"])


def test_scoped_key_cannot_mint_broader_key(client: TestClient, new_tenant: Callable[..., Any]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    narrow = client.post("/api/v1/api-keys", json={"name": "narrow", "scopes": ["apikey:manage", "tenant:read"]},
                         headers=owner).json()["data"]["token"]
    assert_error(client.post("/api/v1/api-keys", json={"name": "wide", "scopes": ["member:manage"]},
                             headers=bearer(narrow)), 403, "auth_scope_exceeds_role")
    ok = client.post("/api/v1/api-keys", json={"name": "same", "scopes": ["tenant:read"]}, headers=bearer(narrow))
    assert ok.status_code == 201


def test_expired_key_is_refused_even_from_the_authorizer_cache(client: TestClient,
                                                               new_tenant: Callable[..., Any]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    token = client.post("/api/v1/api-keys", json={"name": "short", "expires_at": soon},
                        headers=owner).json()["data"]["token"]
    assert client.get("/api/v1/tenants/current", headers=bearer(token)).status_code == 200
    time.sleep(1.6)
    assert_error(client.get("/api/v1/tenants/current", headers=bearer(token)), 401, "auth_token_expired")


def test_api_keys_of_another_tenant_are_404(client: TestClient, new_tenant: Callable[..., Any],
                                            admin_sql: Sql) -> None:
    a, b = new_tenant(), new_tenant()
    key_id = client.post("/api/v1/api-keys", json={"name": "mine"},
                         headers=bearer(a["owner_token"])).json()["data"]["id"]
    assert_error(client.delete(f"/api/v1/api-keys/{key_id}", headers=bearer(b["owner_token"])), 404,
                 "api_key_not_found")
    assert_error(client.delete("/api/v1/api-keys/not-a-uuid", headers=bearer(b["owner_token"])), 404,
                 "api_key_not_found")
    assert admin_sql("SELECT deleted_at IS NULL FROM api_keys WHERE id = %s", (key_id,))[0] == (True,)
    assert key_id not in str(client.get("/api/v1/api-keys", headers=bearer(b["owner_token"])).json())


# Members and roles ----------------------------------------------------------------------------
def add_member(client: TestClient, headers: dict[str, str], email: str, role: str) -> dict[str, Any]:
    response = client.post("/api/v1/members", json={"email": email, "role": role, "issue_token": True},
                           headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def test_role_changes_apply_at_once(client: TestClient, new_tenant: Callable[..., Any]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    dev = add_member(client, owner, f"dev-{uuid.uuid4().hex[:8]}@example.com", "developer")
    dev_headers = bearer(dev["token"])
    # Warm the authorizer cache with the developer's role.
    assert_error(client.post("/api/v1/members", json={"email": "x@example.com"}, headers=dev_headers), 403,
                 "auth_permission_denied")
    promoted = client.patch(f"/api/v1/members/{dev['id']}", json={"role": "admin", "version": dev["version"]},
                            headers=owner)
    assert promoted.status_code == 200 and promoted.json()["data"]["role"] == "admin"
    assert add_member(client, dev_headers, f"new-{uuid.uuid4().hex[:8]}@example.com", "viewer")["role"] == "viewer"
    # An admin cannot create owners, and the demotion also applies at once.
    assert_error(client.post("/api/v1/members", json={"email": "o@example.com", "role": "owner"},
                             headers=dev_headers), 403, "member_role_not_grantable")
    client.patch(f"/api/v1/members/{dev['id']}", json={"role": "viewer"}, headers=owner)
    assert_error(client.post("/api/v1/members", json={"email": "y@example.com"}, headers=dev_headers), 403,
                 "auth_permission_denied")


def test_stale_version_is_409(client: TestClient, new_tenant: Callable[..., Any], admin_sql: Sql) -> None:
    owner = bearer(new_tenant()["owner_token"])
    member = add_member(client, owner, f"v-{uuid.uuid4().hex[:8]}@example.com", "viewer")
    assert client.patch(f"/api/v1/members/{member['id']}", json={"role": "developer", "version": 1},
                        headers=owner).status_code == 200
    before = counts(admin_sql)
    body = assert_error(client.patch(f"/api/v1/members/{member['id']}", json={"role": "admin", "version": 1},
                                     headers=owner), 409, "member_version_conflict")
    assert body["details"]["current_version"] == 2
    assert counts(admin_sql) == before


def test_last_owner_stays(client: TestClient, new_tenant: Callable[..., Any], admin_sql: Sql) -> None:
    tenant = new_tenant()
    owner = bearer(tenant["owner_token"])
    owner_id = tenant["owner"]["id"]
    before = counts(admin_sql)
    assert_error(client.patch(f"/api/v1/members/{owner_id}", json={"role": "admin"}, headers=owner), 409,
                 "member_last_owner")
    assert_error(client.delete(f"/api/v1/members/{owner_id}", headers=owner), 409, "member_last_owner")
    assert counts(admin_sql) == before
    # With a second owner, the first may step down.
    add_member(client, owner, f"o2-{uuid.uuid4().hex[:8]}@example.com", "owner")
    assert client.patch(f"/api/v1/members/{owner_id}", json={"role": "admin"}, headers=owner).status_code == 200


def test_removed_member_is_locked_out_at_once(client: TestClient, new_tenant: Callable[..., Any]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    member = add_member(client, owner, f"gone-{uuid.uuid4().hex[:8]}@example.com", "developer")
    assert client.get("/api/v1/members", headers=bearer(member["token"])).status_code == 200
    assert client.delete(f"/api/v1/members/{member['id']}", headers=owner).status_code == 204
    assert_error(client.get("/api/v1/members", headers=bearer(member["token"])), 401, "auth_token_revoked")
    assert_error(client.delete(f"/api/v1/members/{member['id']}", headers=owner), 404, "member_not_found")
    # The same person can be invited again.
    again = add_member(client, owner, member["email"], "viewer")
    assert again["user_id"] == member["user_id"] and again["id"] != member["id"]


def test_duplicate_member_is_409(client: TestClient, new_tenant: Callable[..., Any], admin_sql: Sql) -> None:
    owner = bearer(new_tenant()["owner_token"])
    email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
    add_member(client, owner, email, "viewer")
    before = counts(admin_sql)
    assert_error(client.post("/api/v1/members", json={"email": email.upper()}, headers=owner), 409,
                 "member_already_exists")
    assert counts(admin_sql) == before


def test_members_of_another_tenant_are_404(client: TestClient, new_tenant: Callable[..., Any],
                                           admin_sql: Sql) -> None:
    a, b = new_tenant(), new_tenant()
    member = add_member(client, bearer(a["owner_token"]), f"iso-{uuid.uuid4().hex[:8]}@example.com", "viewer")
    other = bearer(b["owner_token"])
    before = counts(admin_sql)
    assert_error(client.patch(f"/api/v1/members/{member['id']}", json={"role": "admin"}, headers=other), 404,
                 "member_not_found")
    assert_error(client.delete(f"/api/v1/members/{member['id']}", headers=other), 404, "member_not_found")
    assert_error(client.patch("/api/v1/members/12345", json={"role": "admin"}, headers=other), 404,
                 "member_not_found")
    assert counts(admin_sql) == before
    listed = client.get("/api/v1/members", headers=other).json()
    assert [m["email"] for m in listed["data"]] == [b["owner"]["email"]]


def test_members_pagination_and_sort(client: TestClient, new_tenant: Callable[..., Any]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    for i in range(4):
        add_member(client, owner, f"p{i}-{uuid.uuid4().hex[:6]}@example.com", "viewer")
    page1 = client.get("/api/v1/members?page=1&limit=2&sort=-created_at", headers=owner).json()
    assert page1["pagination"] == {"page": 1, "limit": 2, "total": 5, "total_pages": 3, "has_next": True,
                                   "has_prev": False}
    page3 = client.get("/api/v1/members?page=3&limit=2&sort=-created_at", headers=owner).json()
    assert len(page3["data"]) == 1 and page3["data"][0]["role"] == "owner"
    seen = [m["id"] for p in (1, 2, 3) for m in
            client.get(f"/api/v1/members?page={p}&limit=2&sort=role,email", headers=owner).json()["data"]]
    assert len(set(seen)) == 5
    assert_error(client.get("/api/v1/members?sort=password", headers=owner), 422, "biz_validation_failed")
    assert_error(client.get("/api/v1/members?limit=101", headers=owner), 422, "biz_validation_failed")
    assert_error(client.get("/api/v1/members?page=0", headers=owner), 422, "biz_validation_failed")


# Review findings, held by tests ----------------------------------------------------------------
def test_a_scoped_key_cannot_mint_an_unscoped_one(client: TestClient, new_tenant: Callable[..., Any]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    narrow = client.post("/api/v1/api-keys", json={"name": "narrow", "scopes": ["apikey:manage"],
                                                   "expires_at": soon}, headers=owner).json()["data"]
    minted = client.post("/api/v1/api-keys", json={"name": "wide"}, headers=bearer(narrow["token"]))
    assert minted.status_code == 201
    child = minted.json()["data"]
    assert child["scopes"] == ["apikey:manage"] and child["expires_at"] == narrow["expires_at"]
    assert_error(client.get("/api/v1/members", headers=bearer(child["token"])), 403, "auth_permission_denied")
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert_error(client.post("/api/v1/api-keys", json={"name": "longer", "expires_at": later},
                             headers=bearer(narrow["token"])), 403, "auth_expiry_exceeds_creator")


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v1/api-keys", {"name": "a\u0000b"}),
    ("/api/v1/members", {"email": "nul@example.com", "name": "x\u0000"}),
    ("/api/v1/api-keys", {"name": "far", "expires_at": "9999-12-31T23:59:59-14:00"}),
])
def test_unstorable_input_is_422(client: TestClient, new_tenant: Callable[..., Any], admin_sql: Sql,
                                 path: str, body: dict[str, Any]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    before = counts(admin_sql)
    assert_error(client.post(path, json=body, headers=owner), 422, "biz_validation_failed")
    assert counts(admin_sql) == before


def test_body_encoding_and_media_type_errors(client: TestClient, new_tenant: Callable[..., Any]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    assert_error(client.post("/api/v1/api-keys", content=b'{"name":"\xff"}',
                             headers={**owner, "content-type": "application/json"}), 400, "biz_malformed_json")
    assert_error(client.post("/api/v1/api-keys", content=b'name=x',
                             headers={**owner, "content-type": "text/plain"}), 415, "biz_unsupported_media_type")


def test_member_names_stay_within_their_tenant(client: TestClient, new_tenant: Callable[..., Any]) -> None:
    a, b = bearer(new_tenant()["owner_token"]), bearer(new_tenant()["owner_token"])
    email = f"shared-{uuid.uuid4().hex[:6]}@example.com"
    client.post("/api/v1/members", json={"email": email, "name": "Secret Real Name"}, headers=a)
    seen_by_b = client.post("/api/v1/members", json={"email": email.upper(), "name": "whatever"},
                            headers=b).json()["data"]
    assert seen_by_b["name"] == "whatever"
    assert "Secret Real Name" not in client.get("/api/v1/members", headers=b).text


def test_empty_authorization_header_is_answered_by_the_gateway(client: TestClient) -> None:
    response = client.get("/api/v1/tenants/current", headers={"Authorization": ""})
    assert response.status_code == 401 and response.json() == {"message": "Unauthorized"}


def test_platform_admin_lists_tenants_page_by_page(client: TestClient, new_tenant: Callable[..., Any],
                                                   admin_token: str, admin_sql: Sql) -> None:
    made = [new_tenant(f"listed {n}")["tenant"]["id"] for n in range(3)]
    live = admin_sql("SELECT count(*) FROM tenants WHERE deleted_at IS NULL")[0][0]
    first = client.get("/api/v1/tenants", params={"limit": 2, "sort": "-created_at"}, headers=bearer(admin_token))
    assert first.status_code == 200, first.text
    body = first.json()
    # Newest first: the three just made lead, and the total counts every tenant, not one.
    assert [t["id"] for t in body["data"]] == made[::-1][:2]
    assert body["pagination"]["total"] == live and body["pagination"]["limit"] == 2
    second = client.get("/api/v1/tenants", params={"limit": 2, "page": 2, "sort": "-created_at"},
                        headers=bearer(admin_token)).json()
    assert second["data"][0]["id"] == made[0]
    assert set(second["data"][0]) == {"id", "name", "status", "created_at", "updated_at"}
    by_name = client.get("/api/v1/tenants", params={"limit": 100, "sort": "name"}, headers=bearer(admin_token))
    names = [t["name"] for t in by_name.json()["data"]]
    assert names == sorted(names)
    past_the_end = client.get("/api/v1/tenants", params={"page": 1000}, headers=bearer(admin_token)).json()
    assert past_the_end["data"] == [] and past_the_end["pagination"]["total"] == live
    assert_error(client.get("/api/v1/tenants", params={"sort": "owner"}, headers=bearer(admin_token)),
                 422, "biz_validation_failed")


def test_only_platform_admin_lists_tenants(client: TestClient, new_tenant: Callable[..., Any]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    assert_error(client.get("/api/v1/tenants", headers=owner), 403, "auth_platform_admin_required")
