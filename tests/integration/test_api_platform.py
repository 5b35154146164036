"""Platform endpoints and the HTTP contract's error paths, through the local gateway."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.testclient import TestClient

from functions.catalog import Http, http_functions
from tests.integration.conftest import bearer


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert set(body) == {"code", "message", "details", "request_id"}
    assert body["message"]
    assert body["request_id"] and response.headers["x-request-id"] == body["request_id"]
    return body  # type: ignore[no-any-return]


def test_health_reports_database(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "success"
    assert body["data"]["status"] == "ok" and body["data"]["database"] == "ok"
    assert body["meta"]["request_id"] == response.headers["x-request-id"]


def test_unknown_path_is_404_in_envelope(client: TestClient) -> None:
    assert_error(client.get("/api/v1/nothing-here"), 404, "biz_route_not_found")


def test_wrong_method_is_405_with_allow(client: TestClient, admin_token: str) -> None:
    body = assert_error(client.put("/api/v1/tenants", headers=bearer(admin_token)), 405,
                        "biz_method_not_allowed")
    assert body["details"]["allowed"] == ["GET", "POST"]  # GET: the platform admin's tenant list
    response = client.delete("/api/v1/members", headers=bearer(admin_token))
    assert response.headers["allow"] == "GET, POST"


def test_missing_authorization_header_is_answered_by_the_gateway(client: TestClient) -> None:
    # With authorizer caching on, API Gateway itself answers a request without the identity
    # source (docs/adr): the local gateway reproduces that exact answer.
    response = client.get("/api/v1/tenants/current")
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_bad_tokens_are_401_in_envelope(client: TestClient) -> None:
    assert_error(client.get("/api/v1/tenants/current", headers=bearer("pat_" + "x" * 40)), 401,
                 "auth_invalid_token")
    assert_error(client.get("/api/v1/tenants/current", headers=bearer("not-a-token")), 401, "auth_invalid_token")
    assert_error(client.get("/api/v1/tenants/current", headers={"Authorization": "Basic abc"}), 401,
                 "auth_invalid_token")


def test_platform_admin_token_has_no_tenant(client: TestClient, admin_token: str) -> None:
    assert_error(client.get("/api/v1/tenants/current", headers=bearer(admin_token)), 403,
                 "auth_tenant_token_required")


def test_openapi_document_covers_the_catalog(client: TestClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    for fn in http_functions():
        assert isinstance(fn.trigger, Http)
        operation = doc["paths"][fn.trigger.path][fn.trigger.method.lower()]
        assert operation["operationId"] == fn.name
        assert ("bearerAuth" in str(operation["security"])) is fn.trigger.auth
    create_member = doc["paths"]["/api/v1/members"]["post"]
    schema_ref = create_member["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert {"email", "role"} <= set(schema["properties"])
    assert create_member["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ErrorEnvelope")


def test_request_ids_are_unique(client: TestClient) -> None:
    ids = {client.get("/health").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(uuid.UUID(bytes=b"\0" * 16) != i for i in ids)
