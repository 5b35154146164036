"""The API as clients see it: requests go through the local API Gateway (real API Gateway
v2 events, the authorizer with its result cache, the catalog's handlers) against the
embedded PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from starlette.testclient import TestClient

from infra.local.gateway import LocalGateway
from infra.local.invoker import LocalInvoker
from shared.aws.clients import reset_clients
from shared.config import reset_settings
from shared.models.wiring import reset_model_services
from tests.support.fake_openai import FakeOpenAI

API_KEY = "sk-test-" + "k" * 24


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


def _reset() -> None:
    reset_settings()
    reset_clients()
    reset_model_services()


@pytest.fixture(scope="module")
def kms(app_env: None) -> Iterator[str]:
    """KMS (moto, in-process) for tenant credentials; no platform provider key is set."""
    saved = {k: os.environ.get(k) for k in ("CREDENTIALS_KMS_KEY_ID", "OPENAI_API_KEY", "AWS_ENDPOINT_URL")}
    os.environ.pop("OPENAI_API_KEY", None)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
        os.environ["CREDENTIALS_KMS_KEY_ID"] = key_id
        _reset()
        yield key_id
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _reset()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def openai_fake(fake: FakeOpenAI) -> FakeOpenAI:
    fake.reset()
    return fake
