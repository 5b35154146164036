"""Slow POSTs take an ``Idempotency-Key`` (docs/adr/0047): a client retrying after a timeout gets
the first answer, not a second write; the same key with another body, or while the first request
runs, is refused; without the key nothing changes."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from shared.cache.factory import get_kv_store
from shared.http.idempotency import PENDING_TTL_S, REPLAYED_HEADER
from tests.integration.conftest import bearer

Sql = Callable[..., list[tuple[Any, ...]]]


def _publish(client: TestClient, token: str, agent_id: str, body: dict[str, Any], key: str | None) -> Any:
    headers = bearer(token) | ({"Idempotency-Key": key} if key else {})
    return client.post(f"/api/v1/agents/{agent_id}/publish", json=body, headers=headers)


def _versions(admin_sql: Sql, agent_id: str) -> list[int]:
    return [row[0] for row in admin_sql("SELECT number FROM agent_versions WHERE agent_id = %s ORDER BY number",
                                        (agent_id,))]


def test_a_retried_publish_with_its_key_makes_one_version(client: TestClient, new_tenant: Callable[..., Any],
                                                          admin_sql: Sql) -> None:
    tenant = new_tenant()
    token = tenant["owner_token"]
    agent = client.post("/api/v1/agents", json={"name": "idem"}, headers=bearer(token)).json()["data"]
    key = str(uuid.uuid4())
    first = _publish(client, token, agent["id"], {"note": "v1"}, key)
    assert first.status_code == 201, first.text
    again = _publish(client, token, agent["id"], {"note": "v1"}, key)
    assert again.status_code == 201 and again.json()["data"] == first.json()["data"]
    assert again.headers[REPLAYED_HEADER] == "true" and REPLAYED_HEADER not in first.headers
    assert _versions(admin_sql, agent["id"]) == [1]
    # The same key with another body is a client bug: refused, nothing written.
    reused = _publish(client, token, agent["id"], {"note": "other"}, key)
    assert reused.status_code == 409 and reused.json()["code"] == "biz_idempotency_key_reused"
    # Without a key (or with a new one) publishing numbers versions as before.
    assert _publish(client, token, agent["id"], {}, None).json()["data"]["number"] == 2
    assert _publish(client, token, agent["id"], {}, str(uuid.uuid4())).json()["data"]["number"] == 3
    assert _versions(admin_sql, agent["id"]) == [1, 2, 3]
    # Another tenant's identical key is its own.
    other = new_tenant()
    theirs = client.post("/api/v1/agents", json={"name": "idem"}, headers=bearer(other["owner_token"])).json()["data"]
    assert _publish(client, other["owner_token"], theirs["id"], {"note": "v1"}, key).json()["data"]["number"] == 1


def test_a_key_whose_first_request_runs_is_refused_and_bad_keys_are_400(
        client: TestClient, new_tenant: Callable[..., Any], admin_sql: Sql) -> None:
    tenant = new_tenant()
    token = tenant["owner_token"]
    agent = client.post("/api/v1/agents", json={"name": "busy"}, headers=bearer(token)).json()["data"]
    key, body = "retry-" + uuid.uuid4().hex, b'{"note":"first"}'
    # The first request with this key still running: its key is held as pending.
    cache_key = (f"idem:{{{tenant['tenant']['id']}}}:POST /api/v1/agents/{{agent_id}}/publish:"
                 f"{hashlib.sha256(key.encode()).hexdigest()}")
    pending = json.dumps({"state": "pending", "body": hashlib.sha256(body).hexdigest()})
    assert get_kv_store().set(cache_key, pending, ttl_s=PENDING_TTL_S, only_if_absent=True)
    headers = bearer(token) | {"Idempotency-Key": key, "content-type": "application/json"}
    running = client.post(f"/api/v1/agents/{agent['id']}/publish", content=body, headers=headers)
    assert running.status_code == 409 and running.json()["code"] == "biz_idempotency_in_progress"
    bad = _publish(client, token, agent["id"], {}, "x" * 256)
    assert bad.status_code == 400 and bad.json()["code"] == "biz_idempotency_key_invalid"
    assert _versions(admin_sql, agent["id"]) == []
    # Once the first one is over (its hold expired or freed), the key works.
    get_kv_store().delete(cache_key)
    assert client.post(f"/api/v1/agents/{agent['id']}/publish", content=body, headers=headers).status_code == 201
