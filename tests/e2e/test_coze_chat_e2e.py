"""Coze's OpenAPI over Stratus, driven by the official ``cozepy`` SDK against the local runtime
(``Coze(auth=TokenAuth(token), base_url=<stratus>/coze)``; docs/coze-api.md): the user the token
belongs to, errors as ``CozeAPIError`` with Coze's codes and the logid."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cozepy
import httpx
import pytest
from cozepy import Coze, CozeAPIError, TokenAuth

from tests.e2e.conftest import RunningRuntime
from tests.support.fake_openai import FakeOpenAI

SYSTEM = "You answer questions about Stratus billing."


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


class Tenant:
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        self.runtime = runtime
        self.http = httpx.Client(base_url=runtime.url, timeout=60)
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        tenant = self.http.post("/api/v1/tenants", json={"name": name, "owner_email": f"owner@{name}.test",
                                                         "owner_name": "Ana"}, headers=admin).json()["data"]
        self.token = tenant["owner_token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.post("/api/v1/models", {"name": "scripted", "protocol": "openai", "provider_model": "gpt-scripted",
                                     "base_url": fake.base_url, "api_key": "sk-e2e-" + "x" * 24, "test": False})
        response = self.http.put("/api/v1/models/defaults", headers=self.headers, json={"chat_model": "scripted"})
        assert response.status_code == 200, response.text

    def post(self, path: str, body: dict[str, Any], expect: int = 201) -> Any:
        response = self.http.post(path, json=body, headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()["data"]

    def agent(self, name: str, *, publish: bool = True, config: dict[str, Any] | None = None) -> str:
        agent = self.post("/api/v1/agents", {"name": name, "config": config or {
            "model": {"name": "scripted"}, "system_prompt": SYSTEM}})
        if publish:
            self.post(f"/api/v1/agents/{agent['id']}/publish", {})
        return str(agent["id"])

    def coze(self, token: str | None = None) -> Coze:
        return Coze(auth=TokenAuth(token or self.token), base_url=f"{self.runtime.url}/coze")


@pytest.fixture(scope="module")
def setup(runtime: RunningRuntime, fake: FakeOpenAI) -> dict[str, Any]:
    tenant = Tenant(runtime, fake, "e2e-coze")
    stranger = Tenant(runtime, fake, "e2e-coze-stranger")
    return {"tenant": tenant, "stranger": stranger}


def test_users_me_is_the_token_s_member(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    me = tenant.coze().users.me()
    assert isinstance(me, cozepy.User)
    assert (me.user_name, me.nick_name, me.avatar_url) == ("owner@e2e-coze.test", "Ana", "")
    assert me.user_id and me.response.logid
    raw = tenant.http.get("/coze/v1/users/me", headers=tenant.headers)
    assert raw.headers["x-tt-logid"] == raw.json()["detail"]["logid"] == raw.headers["x-request-id"]
    assert (raw.json()["code"], raw.json()["msg"]) == (0, "")


def test_a_bad_token_is_coze_s_4100(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    with pytest.raises(CozeAPIError) as refused:
        tenant.coze("pat_" + "0" * 40).users.me()
    assert refused.value.code == 4100 and refused.value.logid
    raw = tenant.http.get("/coze/v1/users/me", headers={"Authorization": "Bearer pat_nope"})
    assert raw.status_code == 401 and raw.json()["code"] == 4100


def test_an_unknown_coze_path_is_coze_s_not_found(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    raw = tenant.http.get("/coze/v1/audio/voices", headers=tenant.headers)
    assert raw.status_code == 404 and raw.json()["code"] == 4200 and raw.headers["x-tt-logid"]
