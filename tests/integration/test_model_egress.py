"""Tenant model endpoints go through the egress policy (shared/egress.py): refused on save
unless STRATUS_EGRESS_ALLOW lists them, and again on every call (after resolution and after
each redirect) with ``model_endpoint_forbidden``, not retried. Catalog models are trusted.

The suite's set-up allows loopback (the fake providers listen there); these tests narrow it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from shared.config import reset_settings
from shared.egress import EgressPolicy
from shared.models.errors import ModelEndpointForbidden, endpoint_refusal
from shared.models.providers.anthropic_provider import AnthropicProvider
from shared.models.providers.openai_provider import OpenAIProvider
from shared.models.types import ChatRequest, Credentials, Message, Timeouts
from shared.models.wiring import model_gateway
from tests.integration.conftest import API_KEY, bearer
from tests.integration.test_api_models import create_model, refreshed  # noqa: F401 - a fixture
from tests.integration.test_api_platform import assert_error
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_openai import FakeOpenAI, RawReply

Sql = Callable[..., list[tuple[Any, ...]]]
CHAT = ChatRequest(messages=[Message(role="user", content="Say hello")])


@pytest.fixture
def egress_allow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def allow(value: str) -> None:
        monkeypatch.setenv("STRATUS_EGRESS_ALLOW", value)
        reset_settings()

    yield allow
    monkeypatch.undo()
    reset_settings()


def _body(fake: FakeOpenAI, name: str, base_url: str | None = None) -> dict[str, Any]:
    return {"name": name, "protocol": "openai", "provider_model": "gpt-x", "api_key": API_KEY,
            "base_url": base_url or fake.base_url}


def test_loopback_endpoint_is_refused_until_allow_listed(
        client: TestClient, new_tenant: Callable[..., Any], openai_fake: FakeOpenAI, refreshed: None,  # noqa: F811
        admin_sql: Sql, egress_allow: Callable[[str], None]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    port = openai_fake.origin.rsplit(":", 1)[1]
    egress_allow("")
    before = admin_sql("SELECT count(*) FROM models")[0][0]
    for base_url, rule in ((openai_fake.base_url, "loopback"),
                           (f"http://localhost:{port}/v1", "loopback"),
                           (f"http://2130706433:{port}/v1", "loopback"),
                           (f"http://[::ffff:127.0.0.1]:{port}/v1", "loopback"),
                           ("http://169.254.169.254/latest/meta-data", "metadata"),
                           ("http://[fd00:ec2::254]/", "metadata"),
                           ("http://10.0.0.12:5432/", "private")):
        body = assert_error(client.post("/api/v1/models", json=_body(openai_fake, "inside", base_url),
                                        headers=owner), 422, "model_endpoint_forbidden")
        assert body["details"]["rule"] == rule, base_url
        field = body["details"]["fields"][0]
        assert field["field"] == "body.base_url" and field["type"] == f"egress_{rule}"
        assert rule.replace("_", "-") in body["message"]
    assert openai_fake.requests == []  # not even the credential test went out
    assert admin_sql("SELECT count(*) FROM models")[0][0] == before

    egress_allow("10.9.0.0/16,127.0.0.1,ollama.internal")
    model = create_model(client, owner, openai_fake, "inside")
    assert model["base_url"] == openai_fake.base_url
    assert len(openai_fake.requests_to(FakeOpenAI.CHAT_PATH)) == 1  # the credential test


def test_patch_to_an_internal_endpoint_is_refused(
        client: TestClient, new_tenant: Callable[..., Any], openai_fake: FakeOpenAI, refreshed: None,  # noqa: F811
        egress_allow: Callable[[str], None]) -> None:
    owner = bearer(new_tenant()["owner_token"])
    egress_allow("127.0.0.1")
    model = create_model(client, owner, openai_fake, "moving")
    body = assert_error(client.patch("/api/v1/models/moving", json={
        "base_url": "http://0xa9.0xfe.0xa9.0xfe/v1", "api_key": API_KEY}, headers=owner),
        422, "model_endpoint_forbidden")
    assert body["details"]["rule"] == "metadata"
    assert body["details"]["fields"][0]["field"] == "body.base_url"
    unchanged = client.get("/api/v1/models/moving", headers=owner).json()["data"]
    assert unchanged["base_url"] == openai_fake.base_url and unchanged["version"] == model["version"]


def test_calls_are_checked_again_at_call_time(
        client: TestClient, new_tenant: Callable[..., Any], openai_fake: FakeOpenAI, refreshed: None,  # noqa: F811
        admin_sql: Sql, egress_allow: Callable[[str], None]) -> None:
    """A model saved while its endpoint was allowed is refused once the policy no longer
    allows it: the check runs on the connection, not only on save. Not retried."""
    tenant = new_tenant()
    owner = bearer(tenant["owner_token"])
    tenant_id = uuid.UUID(tenant["tenant"]["id"])
    egress_allow("127.0.0.1")
    create_model(client, owner, openai_fake, "was-allowed")
    openai_fake.reset()
    egress_allow("")
    with pytest.raises(ModelEndpointForbidden) as refused:
        model_gateway().chat(tenant_id, CHAT, model="was-allowed")
    assert refused.value.details["rule"] == "loopback"
    with pytest.raises(ModelEndpointForbidden):
        events, _, _ = model_gateway().stream_chat(tenant_id, CHAT, model="was-allowed")
        list(events)
    tested = client.post("/api/v1/models/was-allowed/test", headers=owner).json()["data"]
    assert tested["ok"] is False and tested["error"]["code"] == "model_endpoint_forbidden"
    assert openai_fake.requests == []
    outcomes = admin_sql("SELECT outcome FROM usage_records WHERE tenant_id = %s AND outcome <> 'ok'",
                         (tenant_id,))
    assert [o for (o,) in outcomes] == ["model_endpoint_forbidden"] * 3  # one each: no retries


def test_a_redirect_to_a_private_address_is_refused_at_call_time(
        client: TestClient, new_tenant: Callable[..., Any], openai_fake: FakeOpenAI, refreshed: None,  # noqa: F811
        egress_allow: Callable[[str], None]) -> None:
    tenant = new_tenant()
    owner = bearer(tenant["owner_token"])
    tenant_id = uuid.UUID(tenant["tenant"]["id"])
    egress_allow("127.0.0.1")
    create_model(client, owner, openai_fake, "redirected")
    openai_fake.reset()
    for target, rule in (("http://10.0.0.1/v1/chat/completions", "private"),
                         ("http://169.254.169.254/latest/meta-data/iam/", "metadata"),
                         ("http://[::ffff:a9fe:a9fe]/", "metadata")):
        openai_fake.enqueue(RawReply(307, "", {"Location": target}, path=FakeOpenAI.CHAT_PATH))
        with pytest.raises(ModelEndpointForbidden) as refused:
            model_gateway().chat(tenant_id, CHAT, model="redirected")
        assert refused.value.details["rule"] == rule
    # One request each, to the allowed endpoint: the redirect was refused, and not retried.
    assert len(openai_fake.requests_to(FakeOpenAI.CHAT_PATH)) == 3
    # A redirect that stays on the allowed endpoint is followed.
    openai_fake.enqueue(RawReply(307, "", {"Location": openai_fake.base_url + "/chat/completions"},
                                 path=FakeOpenAI.CHAT_PATH))
    assert model_gateway().chat(tenant_id, CHAT, model="redirected").result.content == "Hello from the fake"


def test_catalog_credentials_are_trusted_and_tenant_credentials_checked(openai_fake: FakeOpenAI) -> None:
    """The adapters enforce the policy only when the credentials carry one (tenant models)."""
    provider = OpenAIProvider()
    timeouts = Timeouts(connect_s=2, read_s=5)
    platform = Credentials(api_key=API_KEY, base_url=openai_fake.base_url)
    assert provider.chat("gpt-x", CHAT, platform, timeouts).content == "Hello from the fake"
    tenant = Credentials(api_key=API_KEY, base_url=openai_fake.base_url, egress=EgressPolicy())
    with pytest.raises(ModelEndpointForbidden):
        provider.chat("gpt-x", CHAT, tenant, timeouts)
    with pytest.raises(ModelEndpointForbidden):
        list(provider.stream("gpt-x", CHAT, tenant, timeouts))
    allowed = Credentials(api_key=API_KEY, base_url=openai_fake.base_url, egress=EgressPolicy.parse("127.0.0.1"))
    assert provider.chat("gpt-x", CHAT, allowed, timeouts).content == "Hello from the fake"


def test_anthropic_tenant_endpoints_are_checked(client: TestClient, new_tenant: Callable[..., Any],
                                                refreshed: None,  # noqa: F811
                                                egress_allow: Callable[[str], None]) -> None:
    """The anthropic SDK wraps the refusal as a connection error: the gateway still answers
    model_endpoint_forbidden, once (not retried as model_unavailable)."""
    tenant = new_tenant()
    owner = bearer(tenant["owner_token"])
    with FakeAnthropic() as fake:
        egress_allow("127.0.0.1")
        created = client.post("/api/v1/models", json={"name": "claude-mine", "protocol": "anthropic",
                                                     "provider_model": "claude-x", "base_url": fake.base_url,
                                                     "api_key": API_KEY}, headers=owner)
        assert created.status_code == 201, created.text
        fake.reset()
        egress_allow("")
        with pytest.raises(ModelEndpointForbidden) as refused:
            model_gateway().chat(uuid.UUID(tenant["tenant"]["id"]), CHAT, model="claude-mine")
        assert refused.value.details["rule"] == "loopback"
        tested = client.post("/api/v1/models/claude-mine/test", headers=owner).json()["data"]
        assert tested["error"]["code"] == "model_endpoint_forbidden"
        assert fake.requests == []
        # The adapter alone reports a connection failure whose cause is the refusal.
        credentials = Credentials(api_key=API_KEY, base_url=fake.base_url, egress=EgressPolicy())
        with pytest.raises(Exception) as raw:
            AnthropicProvider().chat("claude-x", CHAT, credentials, Timeouts(connect_s=2, read_s=5))
        assert endpoint_refusal(raw.value) is not None
