"""Workflow definitions through the API, for integration tests: a tenant's client with its
helpers, a valid document that needs no model, and the rows a tenant has."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from tests.support.api import ApiClient

Sql = Callable[..., list[tuple[Any, ...]]]
WORKFLOWS = "/api/v1/workflows"


class Api(ApiClient):
    def __init__(self, client: TestClient, tenant: dict[str, Any]) -> None:
        super().__init__(client, tenant["owner_token"])
        self.tenant = tenant
        self.tenant_id = uuid.UUID(tenant["tenant"]["id"])

    def workflow(self, name: str = "flow", **fields: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.data("POST", WORKFLOWS, {"name": name, **fields}, 201)
        return data

    def member(self, role: str) -> Api:
        response = self.client.post("/api/v1/members", headers=self.headers,
                                    json={"email": f"{role}-{uuid.uuid4().hex[:8]}@example.com", "role": role,
                                          "issue_token": True})
        assert response.status_code == 201, response.text
        return Api(self.client, {**self.tenant, "owner_token": response.json()["data"]["token"]})


def template_document(text: str = "Hello {{ name }}") -> dict[str, Any]:
    """start(name) → template → end(greeting): valid, and needs no model."""
    return {
        "nodes": [
            {"id": "start", "type": "start", "title": "Start",
             "config": {"variables": [{"variable": "name", "type": "string", "required": True}]}},
            {"id": "greet", "type": "template", "title": "Greet",
             "config": {"template": text, "variables": [{"variable": "name", "value_selector": ["start", "name"]}]}},
            {"id": "end", "type": "end", "title": "End",
             "config": {"outputs": [{"variable": "greeting", "value_selector": ["greet", "output"]}]}},
        ],
        "edges": [{"source": "start", "target": "greet"}, {"source": "greet", "target": "end"}],
    }


def count(admin_sql: Sql, tenant: Api) -> tuple[int, int]:
    rows = admin_sql("""SELECT (SELECT count(*) FROM workflows WHERE tenant_id = %s),
                               (SELECT count(*) FROM workflow_versions WHERE tenant_id = %s)""",
                     (tenant.tenant_id, tenant.tenant_id))
    return rows[0][0], rows[0][1]
