"""The API as clients see it: requests go through the local API Gateway (real API Gateway
v2 events, the authorizer with its result cache, the catalog's handlers) against the
embedded PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from infra.local.gateway import LocalGateway
from infra.local.invoker import LocalInvoker


@pytest.fixture(scope="session")
def client(app_env: None) -> Iterator[TestClient]:
    with TestClient(LocalGateway(LocalInvoker()), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def new_tenant(client: TestClient, admin_token: str) -> Callable[..., dict[str, Any]]:
    """Create a tenant through the API; returns its data (tenant, owner, owner_token)."""
    counter = {"n": 0}

    def create(name: str | None = None) -> dict[str, Any]:
        counter["n"] += 1
        response = client.post("/api/v1/tenants", json={"name": name or f"tenant {counter['n']}"},
                               headers=bearer(admin_token))
        assert response.status_code == 201, response.text
        return response.json()["data"]  # type: ignore[no-any-return]

    return create


@pytest.fixture
def admin_sql(pg: Any) -> Callable[..., list[tuple[Any, ...]]]:
    """Run SQL as the schema owner (row-level security does not apply): ground truth."""

    def run(query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    return run
