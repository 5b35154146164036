"""Agent variables (docs/variables.md) through the API: declared on the agent, checked at publish
(located 422s), values per agent and end user (PUT all-or-nothing, null back to the default),
tenancy and bound keys, and what a chat turn's system prompt reads (request inputs > stored
value > default). Real PostgreSQL; the model is a fake OpenAI server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from infra.local.gateway import LocalGateway, streaming_mounts
from infra.local.invoker import LocalInvoker
from shared.chat.wiring import reset_chat_service
from tests.integration.conftest import API_KEY, bearer
from tests.support.fake_openai import ChatScript, FakeOpenAI

Sql = Callable[..., list[tuple[Any, ...]]]
VARIABLES = [{"name": "nickname", "description": "What to call the user", "default": "friend"},
             {"name": "city", "description": "Where the user lives"}]


@pytest.fixture(scope="module")
def chat_client(app_env: None, kms: str) -> Iterator[TestClient]:
    reset_chat_service()
    with TestClient(LocalGateway(LocalInvoker(), mounts=streaming_mounts()), base_url="http://127.0.0.1:8000") as c:
        yield c
    reset_chat_service()


class Tenant:
    def __init__(self, client: TestClient, data: dict[str, Any], fake: FakeOpenAI) -> None:
        self.client = client
        self.id = data["tenant"]["id"]
        self.headers = bearer(data["owner_token"])
        body = {"name": "chatty", "protocol": "openai", "provider_model": "gpt-chatty", "base_url": fake.base_url,
                "api_key": API_KEY, "test": False}
        assert client.post("/api/v1/models", json=body, headers=self.headers).status_code == 201

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        return self.client.request(method, path, json=body, headers=self.headers, params=params or None)

    def agent(self, publish: bool = True, **config: Any) -> dict[str, Any]:
        body = {"name": f"agent {uuid.uuid4().hex[:6]}", "config": {
            "model": {"name": "chatty"}, "system_prompt": "Call the user {{nickname}} from {{city}}.",
            "user_variables": VARIABLES, **config}}
        agent: dict[str, Any] = self.call("POST", "/api/v1/agents", body).json()["data"]
        if publish:
            published = self.call("POST", f"/api/v1/agents/{agent['id']}/publish", {})
            assert published.status_code == 201, published.text
        return agent


@pytest.fixture
def tenant(chat_client: TestClient, new_tenant: Callable[..., dict[str, Any]], fake: FakeOpenAI) -> Tenant:
    fake.reset()
    return Tenant(chat_client, new_tenant(), fake)


def values(payload: Any) -> dict[str, tuple[str, str]]:
    return {v["name"]: (v["value"], v["source"]) for v in payload.json()["data"]["variables"]}


def test_values_per_end_user_with_defaults(tenant: Tenant, admin_sql: Sql) -> None:
    agent = tenant.agent()
    path = f"/api/v1/agents/{agent['id']}/variables"
    assert values(tenant.call("GET", path, user="alice")) == {"nickname": ("friend", "default"),
                                                              "city": ("", "default")}
    put = tenant.call("PUT", path, {"values": {"nickname": "Ali", "city": "Lyon"}}, user="alice")
    assert put.status_code == 200, put.text
    assert put.json()["data"]["user"] == "alice"
    assert values(put) == {"nickname": ("Ali", "stored"), "city": ("Lyon", "stored")}
    # Another end user, and the token owner's own (member:<id>), keep their own values.
    assert values(tenant.call("GET", path, user="bob"))["nickname"] == ("friend", "default")
    own = tenant.call("GET", path).json()["data"]
    assert own["user"].startswith("member:") and own["variables"][0]["source"] == "default"
    # Only the names asked for; null takes a value back to its default.
    assert values(tenant.call("GET", path, user="alice", names="city")) == {"city": ("Lyon", "stored")}
    cleared = tenant.call("PUT", path, {"values": {"city": None}}, user="alice")
    assert values(cleared) == {"nickname": ("Ali", "stored"), "city": ("", "default")}
    assert admin_sql("SELECT name, value FROM agent_variable_values WHERE agent_id = %s", (agent["id"],)) == [
        ("nickname", "Ali")]


def test_bad_input_changes_nothing(tenant: Tenant, admin_sql: Sql) -> None:
    agent = tenant.agent()
    path = f"/api/v1/agents/{agent['id']}/variables"
    assert tenant.call("PUT", path, {"values": {"nickname": "Ali"}}, user="alice").status_code == 200
    refused = [
        ({"values": {"nickname": "Bo", "colour": "red"}}, 422, "agent_variable_unknown", "body.values.colour"),
        ({"values": {"nickname": "x" * 10_001}}, 422, "biz_validation_failed", None),
        ({"values": {}}, 422, "biz_validation_failed", None),
        ({"values": {"nickname": 3}}, 422, "biz_validation_failed", None),
    ]
    for body, status, code, field in refused:
        response = tenant.call("PUT", path, body, user="alice")
        assert response.status_code == status and response.json()["code"] == code, response.text
        if field:
            assert [f["field"] for f in response.json()["details"]["fields"]] == [field]
    assert admin_sql("SELECT name, value FROM agent_variable_values WHERE agent_id = %s", (agent["id"],)) == [
        ("nickname", "Ali")]


def test_publish_locates_clashing_declarations(tenant: Tenant) -> None:
    agent = tenant.agent(publish=False, system_prompt="Hi {{nickname}}",
                         variables=[{"name": "nickname"}],
                         user_variables=[*VARIABLES, {"name": "city"}])
    response = tenant.call("POST", f"/api/v1/agents/{agent['id']}/publish", {})
    assert response.status_code == 422 and response.json()["code"] == "agent_config_invalid", response.text
    assert [f["field"] for f in response.json()["details"]["fields"]] == [
        "config.user_variables[0].name", "config.user_variables[2].name"]
    undeclared = tenant.call("POST", "/api/v1/agents", {"name": "x", "config": {"system_prompt": "{{mood}}"}})
    assert undeclared.status_code == 422 and "user_variables" in undeclared.text


def test_other_tenants_and_bound_keys_see_no_agent(tenant: Tenant, chat_client: TestClient,
                                                   new_tenant: Callable[..., dict[str, Any]], fake: FakeOpenAI,
                                                   admin_sql: Sql) -> None:
    agent, elsewhere = tenant.agent(), tenant.agent()
    other = Tenant(chat_client, new_tenant(), fake)
    for method, body in (("GET", None), ("PUT", {"values": {"nickname": "x"}})):
        for path in (f"/api/v1/agents/{agent['id']}/variables", f"/api/v1/agents/{uuid.uuid4()}/variables"):
            response = other.call(method, path, body, user="alice")
            assert response.status_code == 404 and response.json()["code"] == "agent_not_found", response.text
    key = tenant.call("POST", "/api/v1/api-keys", {"name": "bound", "resource_type": "agent",
                                                   "resource_id": agent["id"]})
    assert key.status_code == 201, key.text
    bound = bearer(key.json()["data"]["token"])
    ok = chat_client.get(f"/api/v1/agents/{agent['id']}/variables", headers=bound)
    assert ok.status_code == 200, ok.text
    refused = chat_client.put(f"/api/v1/agents/{elsewhere['id']}/variables", json={"values": {"city": "x"}},
                              headers=bound)
    assert refused.status_code == 404, refused.text
    assert admin_sql("SELECT count(*) FROM agent_variable_values WHERE agent_id = %s", (elsewhere["id"],)) == [(0,)]


def test_the_prompt_reads_inputs_then_stored_values_then_defaults(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent = tenant.agent()
    tenant.call("PUT", f"/api/v1/agents/{agent['id']}/variables", {"values": {"city": "Lyon"}}, user="alice")
    fake.enqueue(ChatScript(text=["a"]), ChatScript(text=["b"]), ChatScript(text=["c"]))
    for user, inputs in (("alice", {}), ("alice", {"city": "Oslo", "nickname": "Al"}), ("bob", {})):
        response = tenant.call("POST", "/api/v1/chat", {"agent_id": agent["id"], "message": "Hi", "user": user,
                                                        "stream": False, "inputs": inputs})
        assert response.status_code == 200, response.text
    systems = [request["messages"][0]["content"] for request in fake.chat_requests()[-3:]]
    assert systems == ["Call the user friend from Lyon.", "Call the user Al from Oslo.",
                       "Call the user friend from ."]


def test_a_chatflow_reads_them_as_sys_user_variables(tenant: Tenant) -> None:
    document = {"mode": "chatflow", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "answer", "type": "answer", "config": {
            "answer": "Hi {{#sys.user_variables.nickname#}} of {{#sys.user_variables.city#}}"}}],
        "edges": [{"source": "start", "target": "answer"}]}
    workflow = tenant.call("POST", "/api/v1/workflows", {"name": "greet", "document": document})
    assert workflow.status_code == 201, workflow.text
    workflow_id = workflow.json()["data"]["id"]
    assert tenant.call("POST", f"/api/v1/workflows/{workflow_id}/publish", {}).status_code == 201
    agent = tenant.agent(mode="chatflow", chatflow={"workflow_id": workflow_id}, system_prompt="")
    tenant.call("PUT", f"/api/v1/agents/{agent['id']}/variables", {"values": {"nickname": "Ali"}}, user="alice")
    answers = []
    for user, inputs in (("alice", {}), ("alice", {"city": "Oslo"}), ("bob", {})):
        response = tenant.call("POST", "/api/v1/chat", {"agent_id": agent["id"], "message": "hello", "user": user,
                                                        "stream": False, "inputs": inputs})
        assert response.status_code == 200, response.text
        answers.append(response.json()["data"]["content"])
    assert answers == ["Hi Ali of ", "Hi Ali of Oslo", "Hi friend of "]


class _Objects:
    """The files' object store, as a port: only the database row matters to a chat turn."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.key = key

    def open(self, key: str) -> Any:
        raise FileNotFoundError(key)

    def delete(self, key: str) -> None:
        raise AssertionError("nothing is deleted")


def test_a_chatflow_turn_reads_uploaded_files_as_sys_files(tenant: Tenant, chat_client: TestClient,
                                                           new_tenant: Callable[..., dict[str, Any]],
                                                           fake: FakeOpenAI, admin_sql: Sql) -> None:
    from shared.auth.principal import Principal
    from shared.db.database import get_database
    from shared.files.service import FilesService

    principal = Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=uuid.UUID(tenant.id), role="owner")
    file = FilesService(get_database(), _Objects).upload(principal, "memo.txt", "text/plain", b"hello")
    document = {"mode": "chatflow", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "answer", "type": "answer", "config": {"answer": "{{#sys.files#}}"}}],
        "edges": [{"source": "start", "target": "answer"}]}
    workflow_id = tenant.call("POST", "/api/v1/workflows", {"name": "files", "document": document}).json()["data"]["id"]
    assert tenant.call("POST", f"/api/v1/workflows/{workflow_id}/publish", {}).status_code == 201
    chatflow = tenant.agent(mode="chatflow", chatflow={"workflow_id": workflow_id}, system_prompt="")
    answer = tenant.call("POST", "/api/v1/chat", {"agent_id": chatflow["id"], "message": "read it", "stream": False,
                                                  "files": [str(file.id)]})
    assert answer.status_code == 200, answer.text
    # An answer shows a list as "- <item>" lines (Dify's markdown of a variable).
    content = answer.json()["data"]["content"]
    assert content.startswith("- ") and "\n" not in content
    assert json.loads(content[2:]) == {
        "file_id": str(file.id), "s3_key": f"tenants/{tenant.id}/files/{file.id}/content", "filename": "memo.txt",
        "mime_type": "text/plain", "size": 5}
    # Another tenant's file, an unknown one, or files for an agent that cannot read them: 422, no turn.
    other = Tenant(chat_client, new_tenant(), fake)
    theirs = FilesService(get_database(), _Objects).upload(
        Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=uuid.UUID(other.id), role="owner"), "x.txt",
        "text/plain", b"x")
    before = admin_sql("SELECT count(*) FROM messages WHERE tenant_id = %s", (tenant.id,))
    for agent_id, files, code, field in (
            (chatflow["id"], [str(theirs.id)], "chat_file_not_found", "files[0]"),
            (chatflow["id"], [str(file.id), str(uuid.uuid4())], "chat_file_not_found", "files[1]"),
            (tenant.agent()["id"], [str(file.id)], "chat_files_unsupported", "files")):
        response = tenant.call("POST", "/api/v1/chat", {"agent_id": agent_id, "message": "x", "stream": False,
                                                        "files": files})
        assert response.status_code == 422 and response.json()["code"] == code, response.text
        assert [f["field"] for f in response.json()["details"]["fields"]] == [field]
    assert admin_sql("SELECT count(*) FROM messages WHERE tenant_id = %s", (tenant.id,)) == before
