"""Agents through the API: drafts with defaults, validation, optimistic locking, soft delete,
built-ins shared by every tenant (read-only, copyable), publishing numbered versions after
validation, tenant isolation and roles; the agent a chat runs (``resolve_for_chat``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from shared.agents.errors import AgentNotFound, AgentNotPublished
from shared.agents.wiring import agent_service
from tests.support.api import ApiClient

Sql = Callable[..., list[tuple[Any, ...]]]
BUILTINS = {"builtin-quick-answer", "builtin-smart-reasoning"}


class Api(ApiClient):
    def __init__(self, client: TestClient, tenant: dict[str, Any]) -> None:
        super().__init__(client, tenant["owner_token"])
        self.tenant = tenant
        self.tenant_id = uuid.UUID(tenant["tenant"]["id"])

    def agent(self, name: str = "support", **fields: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.data("POST", "/api/v1/agents", {"name": name, **fields}, 201)
        return data


@pytest.fixture
def api(client: TestClient, new_tenant: Callable[..., dict[str, Any]]) -> Api:
    return Api(client, new_tenant())


@pytest.fixture
def other(client: TestClient, new_tenant: Callable[..., dict[str, Any]]) -> Api:
    return Api(client, new_tenant())


def fields_of(payload: dict[str, Any]) -> list[str]:
    return [f["field"] for f in payload["details"]["fields"]]


# Drafts -------------------------------------------------------------------------------------
def test_create_fills_defaults_and_reads_back(api: Api) -> None:
    created = api.agent("Support bot", description="Answers tickets", avatar="🤖",
                        config={"model": {"temperature": 0.2}, "suggested_questions": ["How do refunds work?"]})
    assert created["builtin"] is False and created["slug"] is None and created["version"] == 1
    assert created["published_version"] is None and created["avatar"] == "🤖"
    config = created["config"]
    assert config["schema_version"] == 1 and config["mode"] == "quick-answer"
    assert config["model"] == {"name": None, "temperature": 0.2, "top_p": 1.0, "max_tokens": None}
    assert config["memory"] == {"turns": 10, "max_tokens": 4000}
    assert config["knowledge"]["knowledge_base_ids"] == [] and config["knowledge"]["retrieval"]["mode"] == "hybrid"
    assert config["query_rewrite"] is False and config["fallback_model"] is None
    assert config["suggested_questions"] == ["How do refunds work?"]
    assert api.data("GET", f"/api/v1/agents/{created['id']}") == created
    listed = api.data("GET", "/api/v1/agents", builtin="false")
    assert [a["id"] for a in listed] == [created["id"]]


def test_validation_answers_422_naming_the_field(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "a", "colour": "red"}, "body.colour"),
        ({"name": "a", "config": {"model": {"temperature": 2.5}}}, "body.config.model.temperature"),
        ({"name": "a", "config": {"model": {"top_p": -0.1}}}, "body.config.model.top_p"),
        ({"name": "a", "config": {"mode": "creative"}}, "body.config.mode"),
        ({"name": "a", "config": {"unknown": 1}}, "body.config.unknown"),
        ({"name": "a", "config": {"memory": {"turns": 51}}}, "body.config.memory.turns"),
        ({"name": "a", "config": {"suggested_questions": ["q"] * 11}}, "body.config.suggested_questions"),
        ({"name": "a", "config": {"schema_version": 2}}, "body.config.schema_version"),
        ({"name": "a", "config": {"knowledge": {"knowledge_base_ids": [str(uuid.uuid4())] * 2}}},
         "body.config.knowledge"),
        ({"name": "a", "avatar": "http://example.com/a.png"}, "body.avatar"),
        ({"name": ""}, "body.name"),
    ]
    for body, field in cases:
        payload = api.error("POST", "/api/v1/agents", body, 422, "biz_validation_failed")
        assert field in fields_of(payload), (body, payload)
    undeclared = api.error("POST", "/api/v1/agents",
                           {"name": "a", "config": {"system_prompt": "You help {{ company }} with {{topic}}.",
                                                    "variables": [{"name": "company", "required": True}]}},
                           422, "biz_validation_failed")
    assert fields_of(undeclared) == ["body.config"] and "topic" in json.dumps(undeclared)
    assert api.data("GET", "/api/v1/agents", builtin="false") == []
    declared = api.agent("templated", config={"system_prompt": "You help {{ company }} with {{topic}}.",
                                              "variables": [{"name": "company", "required": True},
                                                            {"name": "topic", "default": "billing"}]})
    assert [v["name"] for v in declared["config"]["variables"]] == ["company", "topic"]


def test_names_are_unique_per_tenant_ignoring_case(api: Api, other: Api) -> None:
    api.agent("Helper")
    api.error("POST", "/api/v1/agents", {"name": "helper"}, 409, "agent_name_taken")
    other.agent("Helper")  # another tenant may use it
    second = api.agent("Second")
    api.error("PATCH", f"/api/v1/agents/{second['id']}", {"name": "HELPER", "version": 1}, 409, "agent_name_taken")


def test_update_with_optimistic_locking(api: Api) -> None:
    agent = api.agent("Editor", avatar="https://cdn.example.com/a.png")
    path = f"/api/v1/agents/{agent['id']}"
    config = agent["config"] | {"system_prompt": "Be brief.", "opening_message": "Hello!"}
    updated = api.data("PATCH", path, {"name": "Editor 2", "config": config, "avatar": None, "version": 1})
    assert updated["version"] == 2 and updated["name"] == "Editor 2" and updated["avatar"] is None
    assert updated["config"]["system_prompt"] == "Be brief." and updated["config"]["opening_message"] == "Hello!"
    stale = api.error("PATCH", path, {"description": "late", "version": 1}, 409, "agent_version_conflict")
    assert stale["details"]["version"] == 2
    api.error("PATCH", path, {"version": 1}, 409, "agent_version_conflict")
    assert api.data("GET", path)["description"] == ""
    assert api.data("PATCH", path, {"description": "now", "version": 2})["version"] == 3


def test_soft_delete_then_404_and_the_name_is_free(api: Api, admin_sql: Sql) -> None:
    agent = api.agent("Temp")
    path = f"/api/v1/agents/{agent['id']}"
    api.call("DELETE", path, expect=204)
    for method, body in (("GET", None), ("PATCH", {"name": "x", "version": 2}), ("DELETE", None),
                         ("POST", {})):
        api.error(method, path + ("/publish" if method == "POST" else ""), body, 404, "agent_not_found")
    assert admin_sql("SELECT deleted_at IS NOT NULL FROM agents WHERE id = %s", (agent["id"],)) == [(True,)]
    assert api.agent("Temp")["id"] != agent["id"]
    api.error("GET", "/api/v1/agents/not-an-id", None, 404, "agent_not_found")


def test_old_stored_config_loads_with_defaults(api: Api, admin_sql: Sql) -> None:
    agent_id = uuid.uuid4()
    admin_sql("INSERT INTO agents (id, tenant_id, name, config) VALUES (%s, %s, 'legacy', %s)",
              (agent_id, api.tenant_id, json.dumps({"mode": "quick-answer", "system_prompt": "Old prompt",
                                                    "model": {"name": "gpt-4o-mini"}})))
    loaded = api.data("GET", f"/api/v1/agents/{agent_id}")
    assert loaded["config"]["system_prompt"] == "Old prompt" and loaded["config"]["schema_version"] == 1
    assert loaded["config"]["model"] == {"name": "gpt-4o-mini", "temperature": 0.7, "top_p": 1.0, "max_tokens": None}
    assert loaded["config"]["memory"]["turns"] == 10 and loaded["config"]["variables"] == []
    version = api.data("POST", f"/api/v1/agents/{agent_id}/publish", {}, 201)
    assert version["config"]["memory"] == {"turns": 10, "max_tokens": 4000}


# Built-ins ----------------------------------------------------------------------------------
def test_builtins_are_shared_read_only_and_copyable(api: Api, other: Api, admin_sql: Sql) -> None:
    for tenant in (api, other):
        builtins = tenant.data("GET", "/api/v1/agents", builtin="true")
        assert {a["slug"] for a in builtins} == BUILTINS and all(a["builtin"] for a in builtins)
    everything = api.data("GET", "/api/v1/agents")
    assert {a["slug"] for a in everything[:2]} == BUILTINS  # built-ins first by default
    quick = api.data("GET", "/api/v1/agents/builtin-quick-answer")
    assert quick["config"]["mode"] == "quick-answer" and quick["config"]["model"]["name"] is None
    assert "{{" not in quick["config"]["system_prompt"] and len(quick["config"]["system_prompt"]) > 100
    smart = api.data("GET", "/api/v1/agents/builtin-smart-reasoning")
    assert smart["config"]["mode"] == "smart-reasoning"
    assert api.data("GET", f"/api/v1/agents/{quick['id']}") == quick
    api.error("GET", "/api/v1/agents/builtin-nothing", None, 404, "agent_not_found")

    for ref in (quick["id"], "builtin-quick-answer"):
        path = f"/api/v1/agents/{ref}"
        api.error("PATCH", path, {"name": "mine", "version": quick["version"]}, 403, "agent_builtin_readonly")
        api.error("DELETE", path, None, 403, "agent_builtin_readonly")
        api.error("POST", path + "/publish", {}, 403, "agent_builtin_readonly")
    assert api.data("GET", "/api/v1/agents/builtin-quick-answer/versions") == []

    copy = api.data("POST", "/api/v1/agents/builtin-quick-answer/copy", {}, 201)
    assert copy["name"] == "Quick answer (copy)" and copy["builtin"] is False and copy["slug"] is None
    assert copy["config"] == quick["config"] and copy["version"] == 1
    again = api.data("POST", f"/api/v1/agents/{quick['id']}/copy", {}, 201)
    assert again["name"] == "Quick answer (copy 2)"
    named = api.data("POST", "/api/v1/agents/builtin-smart-reasoning/copy", {"name": "My reasoner"}, 201)
    assert named["config"]["mode"] == "smart-reasoning"
    api.error("POST", "/api/v1/agents/builtin-smart-reasoning/copy", {"name": "my reasoner"}, 409,
              "agent_name_taken")
    assert api.call("POST", "/api/v1/agents/builtin-smart-reasoning/copy", expect=201).json()["data"]["name"] == \
        "Smart reasoning (copy)"  # the body is optional
    # The copy is the tenant's own: editable, and not visible to the other tenant.
    edited = api.data("PATCH", f"/api/v1/agents/{copy['id']}",
                      {"config": copy["config"] | {"opening_message": "Hey"}, "version": 1})
    assert edited["config"]["opening_message"] == "Hey"
    other.error("GET", f"/api/v1/agents/{copy['id']}", None, 404, "agent_not_found")
    # Built-ins are untouched, and row-level security refuses writes to them anyway.
    assert api.data("GET", "/api/v1/agents/builtin-quick-answer") == quick
    assert admin_sql("SELECT count(*) FROM agents WHERE tenant_id IS NULL AND deleted_at IS NULL") == [(2,)]


def test_row_level_security_keeps_builtins_and_versions_read_only(api: Api, pg: Any) -> None:
    import psycopg

    from shared.db.database import SingleConnectionDatabase

    agent = api.agent("Immutable")
    api.data("POST", f"/api/v1/agents/{agent['id']}/publish", {}, 201)
    db = SingleConnectionDatabase(pg.app_url)
    try:
        with db.transaction(api.tenant_id) as conn:
            assert conn.execute("SELECT count(*) FROM agents WHERE tenant_id IS NULL").fetchone() == (2,)
            assert conn.execute("UPDATE agents SET name = 'x' WHERE tenant_id IS NULL").rowcount == 0
        for statement in ("UPDATE agent_versions SET note = 'changed'", "DELETE FROM agent_versions",
                          "DELETE FROM agents"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction(api.tenant_id) as conn:
                conn.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction(api.tenant_id) as conn:
            conn.execute("INSERT INTO agents (id, tenant_id, slug, name, config) "
                         "VALUES (gen_random_uuid(), NULL, 'builtin-mine', 'mine', '{}')")
    finally:
        db.close()
    assert api.data("GET", f"/api/v1/agents/{agent['id']}/versions/1")["note"] == ""


# Publishing ---------------------------------------------------------------------------------
def test_publish_numbers_versions_and_lists_them(api: Api) -> None:
    agent = api.agent("Publisher", config={"system_prompt": "Version one."})
    path = f"/api/v1/agents/{agent['id']}"
    api.error("POST", path + "/publish", {"nope": 1}, 422, "biz_validation_failed")
    first = api.data("POST", path + "/publish", {"note": "first"}, 201)
    assert first["number"] == 1 and first["note"] == "first" and first["agent_id"] == agent["id"]
    assert first["config"]["system_prompt"] == "Version one." and first["name"] == "Publisher"
    assert first["published_by"] == api.tenant["owner"]["user_id"]
    after = api.data("GET", path)
    assert after["published_version"] == 1 and after["published_at"] and after["version"] == 1

    api.data("PATCH", path, {"name": "Publisher v2", "config": agent["config"] | {"system_prompt": "Version two."},
                             "version": 1})
    api.error("POST", path + "/publish", {"version": 1}, 409, "agent_version_conflict")
    second = api.data("POST", path + "/publish", {"version": 2}, 201)
    assert second["number"] == 2 and second["name"] == "Publisher v2"
    assert api.call("POST", path + "/publish", expect=201).json()["data"]["number"] == 3  # no body needed
    assert api.data("GET", path)["published_version"] == 3

    versions = api.data("GET", path + "/versions")
    assert [v["number"] for v in versions] == [3, 2, 1]
    assert [v["config"]["system_prompt"] for v in versions] == ["Version two.", "Version two.", "Version one."]
    page = api.call("GET", path + "/versions", limit=2, page=2, expect=200).json()
    assert [v["number"] for v in page["data"]] == [1] and page["pagination"]["total"] == 3
    assert api.data("GET", path + "/versions/1")["config"]["system_prompt"] == "Version one."
    api.error("GET", path + "/versions/4", None, 404, "agent_version_not_found")
    api.error("GET", path + "/versions/x", None, 404, "agent_version_not_found")


def test_publish_refuses_unusable_models_and_foreign_knowledge_bases(api: Api, other: Api, admin_sql: Sql) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"model": {"name": "no-such-model"}}, "config.model.name", "model_not_found"),
        ({"model": {"name": "all-minilm-l6-v2"}}, "config.model.name", "model_capability_missing"),
        ({"model": {"name": "gpt-4o-mini", "max_tokens": 32768}}, "config.model.max_tokens", "less_than_equal"),
        ({"fallback_model": "text-embedding-3-small"}, "config.fallback_model", "model_capability_missing"),
        ({"knowledge": {"retrieval": {"rerank_model": "gpt-4o"}}}, "config.knowledge.retrieval.rerank_model",
         "model_capability_missing"),
    ]
    for n, (config, field, kind) in enumerate(cases):
        agent = api.agent(f"bad {n}", config=config)
        payload = api.error("POST", f"/api/v1/agents/{agent['id']}/publish", {}, 422, "agent_config_invalid")
        assert payload["details"]["fields"][0]["field"] == field and payload["details"]["fields"][0]["type"] == kind
        assert api.data("GET", f"/api/v1/agents/{agent['id']}")["published_version"] is None

    own_kb, foreign_kb = uuid.uuid4(), uuid.uuid4()
    for kb_id, tenant in ((own_kb, api), (foreign_kb, other)):
        admin_sql("""INSERT INTO knowledge_bases (id, tenant_id, name, embedding_model, dimensions, chunking,
                                                  retrieval)
                     VALUES (%s, %s, %s, 'all-minilm-l6-v2', 384, '{}', '{}')""",
                  (kb_id, tenant.tenant_id, f"kb-{kb_id.hex[:6]}"))
    agent = api.agent("with kbs", config={"knowledge": {"knowledge_base_ids": [str(own_kb), str(foreign_kb)]}})
    payload = api.error("POST", f"/api/v1/agents/{agent['id']}/publish", {}, 422, "agent_config_invalid")
    assert fields_of(payload) == ["config.knowledge.knowledge_base_ids[1]"]
    assert str(foreign_kb) in payload["details"]["fields"][0]["message"]
    admin_sql("UPDATE knowledge_bases SET status = 'deleting' WHERE id = %s", (own_kb,))
    payload = api.error("POST", f"/api/v1/agents/{agent['id']}/publish", {}, 422, "agent_config_invalid")
    assert fields_of(payload) == ["config.knowledge.knowledge_base_ids[0]", "config.knowledge.knowledge_base_ids[1]"]
    admin_sql("UPDATE knowledge_bases SET status = 'active' WHERE id = %s", (own_kb,))
    fixed = api.data("PATCH", f"/api/v1/agents/{agent['id']}",
                     {"config": agent["config"] | {"knowledge": {"knowledge_base_ids": [str(own_kb)]}}, "version": 1})
    assert api.data("POST", f"/api/v1/agents/{fixed['id']}/publish", {}, 201)["number"] == 1


def test_publish_uses_the_tenant_default_chat_model(api: Api, admin_sql: Sql) -> None:
    # A default that stopped fitting (the API refuses to set one): written behind its back.
    admin_sql("INSERT INTO tenant_model_defaults (tenant_id, chat_model) VALUES (%s, 'all-minilm-l6-v2')",
              (api.tenant_id,))
    agent = api.agent("defaults")
    payload = api.error("POST", f"/api/v1/agents/{agent['id']}/publish", {}, 422, "agent_config_invalid")
    assert payload["details"]["fields"][0] == {"field": "config.model.name", "type": "model_capability_missing",
                                               "message": "Model 'all-minilm-l6-v2' cannot do chat"}
    api.data("PUT", "/api/v1/models/defaults", {"chat_model": "claude-3-5-haiku"})
    assert api.data("POST", f"/api/v1/agents/{agent['id']}/publish", {}, 201)["number"] == 1


# Isolation and roles --------------------------------------------------------------------------
def test_another_tenants_agent_is_not_found_everywhere(api: Api, other: Api) -> None:
    agent = api.agent("Private")
    api.data("POST", f"/api/v1/agents/{agent['id']}/publish", {}, 201)
    path = f"/api/v1/agents/{agent['id']}"
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"name": "x", "version": 1}), ("DELETE", "", None),
                                 ("POST", "/publish", {}), ("POST", "/copy", {}), ("GET", "/versions", None),
                                 ("GET", "/versions/1", None)):
        other.error(method, path + suffix, body, 404, "agent_not_found")
    assert agent["id"] not in json.dumps(other.data("GET", "/api/v1/agents"))
    assert api.data("GET", path)["name"] == "Private"


def test_viewers_read_but_cannot_write(api: Api, client: TestClient) -> None:
    agent = api.agent("Shared")
    response = client.post("/api/v1/members", headers=api.headers,
                           json={"email": f"viewer-{uuid.uuid4().hex[:8]}@example.com", "role": "viewer",
                                 "issue_token": True})
    assert response.status_code == 201, response.text
    viewer = Api(client, {**api.tenant, "owner_token": response.json()["data"]["token"]})
    assert viewer.data("GET", f"/api/v1/agents/{agent['id']}")["name"] == "Shared"
    assert len(viewer.data("GET", "/api/v1/agents")) == 3
    path = f"/api/v1/agents/{agent['id']}"
    for method, route, body in (("POST", "/api/v1/agents", {"name": "v"}), ("PATCH", path, {"version": 1}),
                                ("DELETE", path, None), ("POST", path + "/publish", {}),
                                ("POST", path + "/copy", {})):
        viewer.error(method, route, body, 403, "auth_permission_denied")
    assert api.data("GET", path)["version"] == 1


# The agent a chat runs --------------------------------------------------------------------------
def test_resolve_for_chat_draft_versus_published(api: Api) -> None:
    service = agent_service()
    agent = api.agent("Chatty", config={"system_prompt": "Published prompt."})
    with pytest.raises(AgentNotPublished) as err:
        service.resolve_for_chat(api.tenant_id, agent["id"], draft=False)
    assert err.value.status == 409 and err.value.code == "agent_not_published"
    debug = service.resolve_for_chat(api.tenant_id, agent["id"], draft=True)
    assert debug.version is None and debug.config.system_prompt == "Published prompt."

    api.data("POST", f"/api/v1/agents/{agent['id']}/publish", {}, 201)
    api.data("PATCH", f"/api/v1/agents/{agent['id']}",
             {"config": agent["config"] | {"system_prompt": "Draft prompt."}, "version": 1})
    agent_row, config, version = service.resolve_for_chat(api.tenant_id, agent["id"], draft=False)
    assert (version, config.system_prompt, agent_row.name) == (1, "Published prompt.", "Chatty")
    draft = service.resolve_for_chat(api.tenant_id, uuid.UUID(agent["id"]), draft=True)
    assert (draft.version, draft.config.system_prompt) == (None, "Draft prompt.")

    builtin = service.resolve_for_chat(api.tenant_id, "builtin-smart-reasoning", draft=False)
    assert builtin.agent.builtin and builtin.version is None and builtin.config.mode == "smart-reasoning"
    with pytest.raises(AgentNotFound):
        service.resolve_for_chat(uuid.uuid4(), agent["id"], draft=True)
    api.call("DELETE", f"/api/v1/agents/{agent['id']}", expect=204)
    with pytest.raises(AgentNotFound):
        service.resolve_for_chat(api.tenant_id, agent["id"], draft=False)


def test_list_filters_by_publication_and_agent_and_reads_the_published_versions(api: Api, other: Api) -> None:
    """What Coze's bot lists read (shared/facades/coze/bots.py): the filters and, in one query,
    the version each agent of a page publishes — within the tenant only."""
    from shared.agents.repository import AGENT_SORTS
    from shared.auth.principal import Principal
    from shared.db.paging import page_request

    service = agent_service()
    principal = Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=api.tenant_id, role="owner")
    online = api.agent("Online", config={"system_prompt": "One."})
    api.data("POST", f"/api/v1/agents/{online['id']}/publish", {}, 201)
    api.data("PATCH", f"/api/v1/agents/{online['id']}", {"name": "Online (edited)", "version": 1})
    draft = api.agent("Draft")
    theirs = other.agent("Theirs")
    other.data("POST", f"/api/v1/agents/{theirs['id']}/publish", {}, 201)
    page = page_request(1, 20, "-created_at", AGENT_SORTS)

    def names(**filters: Any) -> list[str]:
        return [a.name for a in service.list_agents(principal, False, page, **filters).items]

    assert names() == ["Draft", "Online (edited)"]
    assert names(published=True) == ["Online (edited)"] and names(published=False) == ["Draft"]
    assert names(agent_id=uuid.UUID(draft["id"])) == ["Draft"]
    assert names(agent_id=uuid.UUID(theirs["id"])) == []
    versions = service.published_versions(principal, [uuid.UUID(a["id"]) for a in (online, draft, theirs)])
    assert list(versions) == [uuid.UUID(online["id"])]
    assert (versions[uuid.UUID(online["id"])].name, versions[uuid.UUID(online["id"])].number) == ("Online", 1)
    assert service.published_versions(principal, []) == {}
