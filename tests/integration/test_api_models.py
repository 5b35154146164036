"""The model gateway's API through the local gateway: catalog refresh, tenant models with
encrypted credentials (KMS through moto), defaults, usage, quotas, rate limits; provider
calls go to a local server speaking OpenAI's wire protocol."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from shared.config import reset_settings
from shared.models.errors import ModelNotConfigured
from shared.models.types import ChatRequest, Message, StreamEnd, TextDelta
from shared.models.usage import QuotaExceeded
from shared.models.wiring import model_gateway
from tests.integration.conftest import API_KEY, bearer
from tests.integration.test_api_platform import assert_error
from tests.support.fake_openai import ChatScript, FakeOpenAI, RawReply

Sql = Callable[..., list[tuple[Any, ...]]]
CHAT = ChatRequest(messages=[Message(role="user", content="Say hello")])


@pytest.fixture
def refreshed(client: TestClient, admin_token: str, kms: str) -> None:
    assert client.post("/api/v1/models/refresh", headers=bearer(admin_token)).status_code == 200


def create_model(client: TestClient, headers: dict[str, str], fake: FakeOpenAI, name: str,
                 **extra: Any) -> dict[str, Any]:
    body = {"name": name, "protocol": "openai", "provider_model": f"gpt-{name}", "base_url": fake.base_url,
            "api_key": API_KEY, "pricing": {"input_per_1k": "1.0", "output_per_1k": "2.0"}, **extra}
    response = client.post("/api/v1/models", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


# Catalog ------------------------------------------------------------------------------------
def test_refresh_loads_tracks_changes_and_removals(client: TestClient, admin_token: str, kms: str,
                                                  admin_sql: Sql) -> None:
    first = client.post("/api/v1/models/refresh", headers=bearer(admin_token)).json()["data"]
    assert first["model_count"] == 8
    again = client.post("/api/v1/models/refresh", headers=bearer(admin_token)).json()["data"]
    assert (again["new_models"], again["updated_models"], again["removed_models"]) == ([], [], [])
    # A drifted row is put back; a row no file ships any more is removed.
    admin_sql("""UPDATE models SET spec = jsonb_set(spec, '{display_name}', '"drifted"')
                 WHERE tenant_id IS NULL AND name = 'gpt-4o'""")
    admin_sql("""INSERT INTO models (id, name, spec, source) VALUES (%s, 'retired-model',
                 '{"name": "retired-model"}', 'catalog')""", (uuid.uuid4(),))
    third = client.post("/api/v1/models/refresh", headers=bearer(admin_token)).json()["data"]
    assert third["updated_models"] == ["gpt-4o"] and third["removed_models"] == ["retired-model"]
    assert third["model_count"] == 8 and third["refreshed_at"]


def test_only_platform_admin_refreshes(client: TestClient, new_tenant: Callable[..., Any]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    assert_error(client.post("/api/v1/models/refresh", headers=owner), 403, "auth_platform_admin_required")


def test_list_filters_and_reports_configuration(client: TestClient, new_tenant: Callable[..., Any],
                                                refreshed: None) -> None:
    owner = bearer(new_tenant()["owner_token"])
    embedding = client.get("/api/v1/models?capability=embedding&limit=100", headers=owner).json()
    names = {m["name"] for m in embedding["data"]}
    assert names == {"all-minilm-l6-v2", "text-embedding-3-small", "titan-embed-text-v2"}
    past_end = client.get("/api/v1/models?capability=embedding&page=9&limit=100", headers=owner).json()
    assert past_end["data"] == [] and past_end["pagination"]["total"] == 3
    models = {m["name"]: m for m in client.get("/api/v1/models?limit=100", headers=owner).json()["data"]}
    assert models["gpt-4o-mini"]["configured"] is False  # no OPENAI_API_KEY here
    assert models["all-minilm-l6-v2"]["configured"] is True and models["all-minilm-l6-v2"]["dimensions"] == 384
    # Bedrock runs on the function's AWS role; here AWS is moto, which cannot run Converse.
    assert models["bedrock-claude-3-5-haiku"]["configured"] is False
    assert models["titan-embed-text-v2"]["configured"] is False
    assert "api_key_ref" not in str(models) and "OPENAI_API_KEY" not in str(models)
    assert_error(client.get("/api/v1/models?capability=telepathy", headers=owner), 422, "biz_validation_failed")
    assert_error(client.get("/api/v1/models/no-such-model", headers=owner), 404, "model_not_found")


def test_unconfigured_provider_answers_model_not_configured(client: TestClient, new_tenant: Callable[..., Any],
                                                             refreshed: None) -> None:
    tenant = new_tenant()
    result = client.post("/api/v1/models/gpt-4o-mini/test", headers=bearer(tenant["owner_token"])).json()["data"]
    assert result["ok"] is False and result["error"]["code"] == "model_not_configured"
    assert "OPENAI_API_KEY" in result["error"]["message"]
    with pytest.raises(ModelNotConfigured) as err:
        model_gateway().chat(uuid.UUID(tenant["tenant"]["id"]), CHAT)
    assert err.value.details["missing"] == "OPENAI_API_KEY"


# Tenant models -----------------------------------------------------------------------------------
def test_tenant_model_credentials_are_tested_encrypted_and_never_returned(
        client: TestClient, new_tenant: Callable[..., Any], openai_fake: FakeOpenAI, refreshed: None,
        admin_sql: Sql) -> None:
    owner = bearer(new_tenant()["owner_token"])
    model = create_model(client, owner, openai_fake, "mine")
    assert model["configured"] is True and model["source"] == "tenant"
    test_call = openai_fake.requests_to(FakeOpenAI.CHAT_PATH)[0]
    assert test_call.headers["authorization"] == f"Bearer {API_KEY}"
    stored = admin_sql("SELECT credentials FROM models WHERE id = %s", (model["id"],))[0][0]
    assert stored and API_KEY.encode() not in bytes(stored)
    fetched = client.get("/api/v1/models/mine", headers=owner)
    assert API_KEY not in fetched.text and "api_key" not in fetched.json()["data"]
    listed = client.get("/api/v1/models?source=tenant", headers=owner).json()
    assert [m["name"] for m in listed["data"]] == ["mine"] and API_KEY not in str(listed)


def test_failed_credential_test_stores_nothing(client: TestClient, new_tenant: Callable[..., Any],
                                               openai_fake: FakeOpenAI, refreshed: None, admin_sql: Sql) -> None:
    owner = bearer(new_tenant()["owner_token"])
    before = admin_sql("SELECT count(*) FROM models")[0][0]
    openai_fake.enqueue(RawReply(401, {"error": {"message": "bad key", "type": "invalid_request_error",
                                                 "code": "invalid_api_key"}}))
    body = assert_error(client.post("/api/v1/models", json={
        "name": "badkey", "protocol": "openai", "provider_model": "gpt-x", "base_url": openai_fake.base_url,
        "api_key": "sk-wrong"}, headers=owner), 422, "model_test_failed")
    assert body["details"]["error"]["code"] == "model_auth_failed"
    assert admin_sql("SELECT count(*) FROM models")[0][0] == before


def test_tenant_model_rules(client: TestClient, new_tenant: Callable[..., Any], openai_fake: FakeOpenAI,
                            refreshed: None, admin_sql: Sql) -> None:
    a, b = new_tenant(), new_tenant()
    owner = bearer(a["owner_token"])
    model = create_model(client, owner, openai_fake, "rules")
    before = admin_sql("SELECT count(*), coalesce(sum(version), 0) FROM models")[0]
    assert_error(client.post("/api/v1/models", json={"name": "rules", "protocol": "openai", "provider_model": "x",
                                                     "base_url": openai_fake.base_url, "test": False},
                             headers=owner), 409, "model_name_taken")
    assert_error(client.post("/api/v1/models", json={"name": "gpt-4o-mini", "protocol": "openai",
                                                     "provider_model": "x", "test": False}, headers=owner),
                 409, "model_name_taken")
    assert_error(client.post("/api/v1/models", json={"name": "defaults", "protocol": "openai",
                                                     "provider_model": "x", "test": False}, headers=owner),
                 422, "biz_validation_failed")
    assert_error(client.post("/api/v1/models", json={"name": "emb", "protocol": "openai", "provider_model": "x",
                                                     "capabilities": ["embedding"], "test": False}, headers=owner),
                 422, "biz_validation_failed")  # embedding models declare dimensions
    assert_error(client.patch("/api/v1/models/gpt-4o-mini", json={"display_name": "x"}, headers=owner), 403,
                 "model_read_only")
    other = bearer(b["owner_token"])
    assert_error(client.get("/api/v1/models/rules", headers=other), 404, "model_not_found")
    assert_error(client.delete("/api/v1/models/rules", headers=other), 404, "model_not_found")
    viewer = client.post("/api/v1/members", json={"email": f"v-{uuid.uuid4().hex[:6]}@example.com",
                                                  "role": "viewer", "issue_token": True}, headers=owner)
    assert_error(client.post("/api/v1/models", json={"name": "v", "protocol": "openai", "provider_model": "x"},
                             headers=bearer(viewer.json()["data"]["token"])), 403, "auth_permission_denied")
    assert admin_sql("SELECT count(*), coalesce(sum(version), 0) FROM models")[0] == before
    # Renaming the display name needs no new test call; a new key does.
    calls = len(openai_fake.requests_to(FakeOpenAI.CHAT_PATH))
    renamed = client.patch("/api/v1/models/rules", json={"display_name": "Rules", "version": model["version"]},
                           headers=owner).json()["data"]
    assert renamed["display_name"] == "Rules" and renamed["version"] == model["version"] + 1
    assert len(openai_fake.requests_to(FakeOpenAI.CHAT_PATH)) == calls
    client.patch("/api/v1/models/rules", json={"api_key": "sk-new-key-000000"}, headers=owner)
    assert openai_fake.requests_to(FakeOpenAI.CHAT_PATH)[-1].headers["authorization"] == "Bearer sk-new-key-000000"
    assert_error(client.patch("/api/v1/models/rules", json={"display_name": "x", "version": 1}, headers=owner),
                 409, "model_version_conflict")
    assert client.delete("/api/v1/models/rules", headers=owner).status_code == 204
    assert_error(client.get("/api/v1/models/rules", headers=owner), 404, "model_not_found")


# Gateway, defaults, usage -------------------------------------------------------------------------
def test_chat_stream_usage_and_report(client: TestClient, new_tenant: Callable[..., Any],
                                      openai_fake: FakeOpenAI, refreshed: None) -> None:
    tenant = new_tenant()
    owner = bearer(tenant["owner_token"])
    tenant_id = uuid.UUID(tenant["tenant"]["id"])
    create_model(client, owner, openai_fake, "talk")
    answer = model_gateway().chat(tenant_id, CHAT, model="talk")
    assert answer.result.content == "Hello from the fake" and answer.model == "talk"
    assert (answer.result.usage.input_tokens, answer.result.usage.output_tokens) == (12, 7)
    openai_fake.enqueue(ChatScript(text=["no", " usage"], usage=None))
    events, _, _ = model_gateway().stream_chat(tenant_id, CHAT, model="talk")
    received = list(events)
    assert "".join(e.text for e in received if isinstance(e, TextDelta)) == "no usage"
    end = received[-1]
    assert isinstance(end, StreamEnd) and end.usage is not None and end.usage.estimated
    assert openai_fake.chat_requests()[-1]["stream_options"] == {"include_usage": True}
    report = client.get("/api/v1/usage?group_by=model", headers=owner).json()["data"]
    talk = next(g for g in report["groups"] if g["key"] == "talk")
    assert talk["calls"] == 3  # the credential test, the chat, the stream
    assert talk["includes_estimates"] is True
    assert report["total_input_tokens"] >= 24
    # Money is a JSON number (never a string such as "0E-10").
    assert isinstance(talk["cost"], float) and talk["cost"] > 0
    assert isinstance(report["total_cost"], float) and report["total_cost"] >= talk["cost"]
    days = client.get("/api/v1/usage?group_by=day", headers=owner).json()["data"]["groups"]
    assert len(days) == 1 and days[0]["calls"] == 3
    assert_error(client.get("/api/v1/usage?group_by=week", headers=owner), 422, "biz_validation_failed")
    assert_error(client.get("/api/v1/usage?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", headers=owner),
                 422, "biz_validation_failed")


def test_fallback_model_answers_when_primary_keeps_failing(client: TestClient, new_tenant: Callable[..., Any],
                                                           openai_fake: FakeOpenAI, refreshed: None) -> None:
    tenant = new_tenant()
    owner = bearer(tenant["owner_token"])
    create_model(client, owner, openai_fake, "primary", provider_model="flaky-primary")
    create_model(client, owner, openai_fake, "backup", provider_model="steady-backup")
    defaults = client.put("/api/v1/models/defaults", json={"chat_model": "primary", "chat_fallback_model": "backup"},
                          headers=owner)
    assert defaults.status_code == 200 and defaults.json()["data"]["effective"]["chat_model"] == "primary"
    openai_fake.reset()
    openai_fake.enqueue(*[RawReply(503, {"error": {"message": "down"}}, path=FakeOpenAI.CHAT_PATH)
                          for _ in range(3)])
    answer = model_gateway().chat(uuid.UUID(tenant["tenant"]["id"]), CHAT)
    assert answer.model == "backup"
    assert [r["model"] for r in openai_fake.chat_requests()] == ["flaky-primary"] * 3 + ["steady-backup"]


def test_a_context_overflow_is_not_retried_and_its_window_is_learned(
        client: TestClient, new_tenant: Callable[..., Any], openai_fake: FakeOpenAI, refreshed: None) -> None:
    """An OpenAI-compatible server started with a smaller window than the model declares: the
    overflow is model_context_too_long at once (no retries, no fallback), and the window it
    names is what the next prompt is sized for."""
    from shared.cache.factory import get_kv_store
    from shared.models.context_windows import ContextWindows
    from shared.models.errors import ContextTooLong
    from shared.models.spec import Capability
    from shared.models.wiring import model_resolver

    tenant = new_tenant()
    owner = bearer(tenant["owner_token"])
    tenant_id = uuid.UUID(tenant["tenant"]["id"])
    create_model(client, owner, openai_fake, "vllm", max_context_tokens=32768)
    create_model(client, owner, openai_fake, "spare")
    model = model_resolver().get(tenant_id, "vllm", Capability.CHAT)
    windows = ContextWindows(get_kv_store())
    assert windows.effective(model) == 32768
    openai_fake.reset()
    overflow = {"object": "error", "message": "This model's maximum context length is 8192 tokens. However, you "
                "requested 9100 tokens (5004 in the messages, 4096 in the completion).",
                "type": "BadRequestError", "param": None, "code": 400}
    openai_fake.enqueue(*[RawReply(400, overflow, path=FakeOpenAI.CHAT_PATH) for _ in range(3)])
    with pytest.raises(ContextTooLong) as caught:
        model_gateway().chat(tenant_id, CHAT, model="vllm", fallback_model="spare")
    assert caught.value.code == "model_context_too_long" and caught.value.status == 400
    assert len(openai_fake.chat_requests()) == 1  # neither retried nor handed to the fallback
    assert windows.learned(model) == 8192 and windows.effective(model) == 8192
    # Streaming learns the same way; a window above the declared one is not taken.
    openai_fake.reset()
    openai_fake.enqueue(RawReply(400, {**overflow, "message": "maximum context length is 4096 tokens"},
                                 path=FakeOpenAI.CHAT_PATH))
    events, _, _ = model_gateway().stream_chat(tenant_id, CHAT, model="vllm")
    with pytest.raises(ContextTooLong):
        list(events)
    assert windows.effective(model) == 4096
    windows.learn(model, 65536)
    assert windows.effective(model) == 4096


def test_defaults_are_checked(client: TestClient, new_tenant: Callable[..., Any], refreshed: None) -> None:
    owner = bearer(new_tenant()["owner_token"])
    current = client.get("/api/v1/models/defaults", headers=owner).json()["data"]
    assert current["version"] == 0 and current["effective"]["embedding_model"] == "all-minilm-l6-v2"
    body = assert_error(client.put("/api/v1/models/defaults", json={"embedding_model": "gpt-4o-mini",
                                                                     "chat_model": "nope"}, headers=owner),
                        422, "biz_validation_failed")
    assert {f["type"] for f in body["details"]["fields"]} == {"model_capability_missing", "model_not_found"}
    ok = client.put("/api/v1/models/defaults", json={"embedding_model": "text-embedding-3-small"}, headers=owner)
    assert ok.json()["data"]["version"] == 1
    assert_error(client.put("/api/v1/models/defaults", json={"chat_model": "gpt-4o", "version": 5}, headers=owner),
                 409, "model_defaults_version_conflict")


def test_defaults_version_read_is_accepted_back(client: TestClient, new_tenant: Callable[..., Any],
                                                refreshed: None) -> None:
    """What GET returns is what PUT takes: version 0 (nothing set yet) guards the first write."""
    owner = bearer(new_tenant()["owner_token"])
    current = client.get("/api/v1/models/defaults", headers=owner).json()["data"]
    assert current["version"] == 0
    body = {"embedding_model": "text-embedding-3-small", "version": current["version"]}
    first = client.put("/api/v1/models/defaults", json=body, headers=owner)
    assert first.status_code == 200 and first.json()["data"]["version"] == 1
    # Someone else wrote first: the version read (0) is stale.
    assert_error(client.put("/api/v1/models/defaults", json=body, headers=owner),
                 409, "model_defaults_version_conflict")
    again = client.put("/api/v1/models/defaults", json={**body, "version": 1}, headers=owner)
    assert again.status_code == 200 and again.json()["data"]["version"] == 2
    assert_error(client.put("/api/v1/models/defaults", json={**body, "version": -1}, headers=owner),
                 422, "biz_validation_failed")


# Quotas and rate limits ------------------------------------------------------------------------------
def test_quotas(client: TestClient, new_tenant: Callable[..., Any], admin_token: str, openai_fake: FakeOpenAI,
                refreshed: None) -> None:
    tenant = new_tenant()
    owner = bearer(tenant["owner_token"])
    tenant_id = uuid.UUID(tenant["tenant"]["id"])
    create_model(client, owner, openai_fake, "metered")  # the test call uses 19 tokens
    admin = bearer(admin_token)
    path = f"/api/v1/tenants/{tenant_id}/quota"
    assert_error(client.put(path, json={"monthly_tokens_hard": 10}, headers=owner), 403,
                 "auth_platform_admin_required")
    assert_error(client.put(f"/api/v1/tenants/{uuid.uuid4()}/quota", json={"monthly_tokens_hard": 10},
                            headers=admin), 404, "tenant_not_found")
    assert_error(client.put(path, json={"monthly_tokens_soft": 50, "monthly_tokens_hard": 10}, headers=admin),
                 422, "biz_validation_failed")
    assert client.put(path, json={"monthly_tokens_soft": 5}, headers=admin).status_code == 200
    warned = model_gateway().chat(tenant_id, CHAT, model="metered")
    assert "X-Stratus-Quota-Warning" in warned.headers
    assert client.put(path, json={"monthly_tokens_hard": 30}, headers=admin).status_code == 200
    with pytest.raises(QuotaExceeded) as err:
        model_gateway().chat(tenant_id, CHAT, model="metered")
    assert err.value.status == 429 and int(err.value.headers["Retry-After"]) > 0
    report = client.get("/api/v1/usage", headers=owner).json()["data"]
    assert report["quota"] == {"monthly_tokens_soft": None, "monthly_tokens_hard": 30, "used_this_month": 38}


def test_per_token_rate_limit(client: TestClient, new_tenant: Callable[..., Any],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    owner = bearer(new_tenant()["owner_token"])
    monkeypatch.setenv("RATE_LIMIT_BURST", "3")
    monkeypatch.setenv("RATE_LIMIT_PER_S", "0.01")
    reset_settings()
    try:
        remaining = [client.get("/api/v1/tenants/current", headers=owner).headers["ratelimit-remaining"]
                     for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        limited = client.get("/api/v1/tenants/current", headers=owner)
        assert_error(limited, 429, "sys_rate_limited")
        assert int(limited.headers["retry-after"]) >= 1 and limited.headers["ratelimit-limit"] == "3"
    finally:
        monkeypatch.undo()
        reset_settings()


# Review findings, held by tests -------------------------------------------------------------------
def test_stored_key_is_never_sent_to_a_new_endpoint(client: TestClient, new_tenant: Callable[..., Any],
                                                    openai_fake: FakeOpenAI, refreshed: None) -> None:
    owner = bearer(new_tenant()["owner_token"])
    create_model(client, owner, openai_fake, "pinned")
    calls = len(openai_fake.requests)
    body = assert_error(client.patch("/api/v1/models/pinned", json={"base_url": openai_fake.origin + "/other/v1"},
                                     headers=owner), 422, "model_key_required")
    assert body["details"]["fields"][0]["field"] == "body.api_key"
    assert len(openai_fake.requests) == calls  # nothing was sent anywhere


def test_capabilities_must_be_offered_by_the_protocol(client: TestClient, new_tenant: Callable[..., Any],
                                                      refreshed: None) -> None:
    owner = bearer(new_tenant()["owner_token"])
    for body in ({"name": "a-emb", "protocol": "anthropic", "provider_model": "x", "capabilities": ["embedding"],
                  "dimensions": 8, "test": False},
                 {"name": "o-rr", "protocol": "openai", "provider_model": "x", "capabilities": ["rerank"],
                  "test": False}):
        assert_error(client.post("/api/v1/models", json=body, headers=owner), 422, "biz_validation_failed")


def test_a_default_model_cannot_be_deleted(client: TestClient, new_tenant: Callable[..., Any],
                                           openai_fake: FakeOpenAI, refreshed: None) -> None:
    owner = bearer(new_tenant()["owner_token"])
    create_model(client, owner, openai_fake, "busy")
    client.put("/api/v1/models/defaults", json={"chat_model": "busy"}, headers=owner)
    body = assert_error(client.delete("/api/v1/models/busy", headers=owner), 409, "model_in_use")
    assert body["details"]["defaults"] == ["chat_model"]


def test_abandoned_stream_is_still_accounted(client: TestClient, new_tenant: Callable[..., Any],
                                             openai_fake: FakeOpenAI, refreshed: None, admin_sql: Sql) -> None:
    tenant = new_tenant()
    create_model(client, bearer(tenant["owner_token"]), openai_fake, "quitter")
    openai_fake.enqueue(ChatScript(text=["one", " two", " three"]))
    events, _, _ = model_gateway().stream_chat(uuid.UUID(tenant["tenant"]["id"]), CHAT, model="quitter")
    assert isinstance(next(iter(events)), TextDelta)
    events.close()  # type: ignore[attr-defined]
    rows = admin_sql("""SELECT outcome, estimated, output_tokens > 0 FROM usage_records
                        WHERE tenant_id = %s AND outcome <> 'ok'""", (tenant["tenant"]["id"],))
    assert rows == [("interrupted", True, True)]


def test_streamed_chat_falls_back_before_the_first_delta(client: TestClient, new_tenant: Callable[..., Any],
                                                         openai_fake: FakeOpenAI, refreshed: None) -> None:
    tenant = new_tenant()
    owner = bearer(tenant["owner_token"])
    create_model(client, owner, openai_fake, "s-primary", provider_model="s-flaky")
    create_model(client, owner, openai_fake, "s-backup", provider_model="s-steady")
    openai_fake.reset()
    openai_fake.enqueue(*[RawReply(503, {"error": {"message": "down"}}, path=FakeOpenAI.CHAT_PATH)
                          for _ in range(3)])
    events, _, _ = model_gateway().stream_chat(uuid.UUID(tenant["tenant"]["id"]), CHAT, model="s-primary",
                                               fallback_model="s-backup")
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Hello from the fake"
    assert [r["model"] for r in openai_fake.chat_requests()] == ["s-flaky"] * 3 + ["s-steady"]


def test_usage_dates_at_the_edge_of_the_calendar_are_422(client: TestClient, new_tenant: Callable[..., Any],
                                                         refreshed: None) -> None:
    owner = bearer(new_tenant()["owner_token"])
    for query in ("to=9999-12-31T23:59:59-01:00", "to=0001-01-02T00:00:00Z"):
        assert_error(client.get(f"/api/v1/usage?{query}", headers=owner), 422, "biz_validation_failed")


def test_gateway_decrypts_a_stored_key_once_per_model_version(client: TestClient, new_tenant: Callable[..., Any],
                                                              openai_fake: FakeOpenAI, refreshed: None) -> None:
    from shared.cache.memory import MemoryKeyValueStore
    from shared.db.database import get_database
    from shared.models.credentials import default_cipher
    from shared.models.gateway import ModelGateway
    from shared.models.resolver import ModelResolver
    from shared.models.spec import Capability
    from shared.models.wiring import usage_service

    tenant = new_tenant()
    owner = bearer(tenant["owner_token"])
    model = create_model(client, owner, openai_fake, "cached", test=False)
    decrypts: list[uuid.UUID] = []

    class CountingCipher:
        def encrypt(self, plaintext: str, tenant_id: uuid.UUID) -> bytes:
            return default_cipher().encrypt(plaintext, tenant_id)

        def decrypt(self, ciphertext: bytes, tenant_id: uuid.UUID) -> str:
            decrypts.append(tenant_id)
            return default_cipher().decrypt(ciphertext, tenant_id)

    gateway = ModelGateway(get_database(), ModelResolver(get_database(), 0), usage_service(), MemoryKeyValueStore(),
                           CountingCipher)
    tenant_id = uuid.UUID(tenant["tenant"]["id"])
    keys = [gateway.target(tenant_id, "cached", Capability.CHAT).credentials.api_key for _ in range(3)]
    assert keys == [API_KEY] * 3 and len(decrypts) == 1
    rotated = client.patch("/api/v1/models/cached", json={"api_key": "sk-rotated-000000", "version": model["version"],
                                                          "test": False}, headers=owner)
    assert rotated.status_code == 200, rotated.text
    assert gateway.target(tenant_id, "cached", Capability.CHAT).credentials.api_key == "sk-rotated-000000"
    assert len(decrypts) == 2
