"""Workflow validation, Dify import and export through the API: a draft's problems on GET,
publishing refused with every problem listed (the graph's, then the models and knowledge bases
it names), a Dify app DSL imported with its model substitutions, refused when Stratus cannot
run it, and exported as YAML that imports back unchanged."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from tests.support.workflow_api import WORKFLOWS, Api, Sql, count, template_document

IMPORT = WORKFLOWS + "/import"

# A Dify app DSL (0.3.1, a workflow app): start(name) → llm → end(greeting). Its model is one no
# tenant has, so the import substitutes the tenant's default chat model.
GREETER = """\
app:
  name: Greeter
  description: Greets a visitor by name
  mode: workflow
kind: app
version: 0.3.1
workflow:
  graph:
    nodes:
      - id: '1711000000001'
        type: custom
        position: {x: 80, y: 282}
        data:
          type: start
          title: Start
          variables:
            - {variable: name, label: Name, type: text-input, required: true, max_length: 48}
      - id: '1711000000002'
        type: custom
        position: {x: 380, y: 282}
        data:
          type: llm
          title: Write greeting
          model: {provider: openai, name: gpt-4-turbo-preview, mode: chat, completion_params: {temperature: 0.7}}
          prompt_template:
            - {role: system, text: 'Write a one-line greeting for {{#1711000000001.name#}}.'}
          context: {enabled: false, variable_selector: []}
      - id: '1711000000003'
        type: custom
        position: {x: 680, y: 282}
        data:
          type: end
          title: End
          outputs:
            - {variable: greeting, value_selector: ['1711000000002', text]}
    edges:
      - {id: e1, source: '1711000000001', sourceHandle: source, target: '1711000000002', targetHandle: target}
      - {id: e2, source: '1711000000002', sourceHandle: source, target: '1711000000003', targetHandle: target}
"""


@pytest.fixture
def api(client: TestClient, new_tenant: Callable[..., dict[str, Any]]) -> Api:
    return Api(client, new_tenant())


@pytest.fixture
def other(client: TestClient, new_tenant: Callable[..., dict[str, Any]]) -> Api:
    return Api(client, new_tenant())


def llm_node(node_id: str, model: dict[str, Any]) -> dict[str, Any]:
    return {"id": node_id, "type": "llm",
            "config": {"model": model, "prompt_template": [{"role": "user", "text": "{{#start.q#}}"}]}}


def chain(*middle: dict[str, Any], output: list[str] | None = None) -> dict[str, Any]:
    """start(q) → each node in turn → end (answering ``output``, else nothing)."""
    nodes = [{"id": "start", "type": "start", "config": {"variables": [{"variable": "q", "type": "string"}]}},
             *middle,
             {"id": "end", "type": "end",
              "config": {"outputs": [{"variable": "answer", "value_selector": output}] if output else []}}]
    ids = [node["id"] for node in nodes]
    return {"nodes": nodes, "edges": [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]}


def problems_of(payload: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    return [(p["node_id"], p["field"], p["code"]) for p in payload["details"]["problems"]]


# Validation ------------------------------------------------------------------------------------
def test_a_draft_shows_its_problems_and_publishing_lists_every_one(api: Api, admin_sql: Sql) -> None:
    document = {
        "nodes": [
            {"id": "start", "type": "start", "config": {"variables": [{"variable": "q", "type": "string"}]}},
            {"id": "shout", "type": "template",
             "config": {"template": "{{ x }}", "variables": [{"variable": "x", "value_selector": ["ghost", "text"]}]}},
            {"id": "calc", "type": "code", "config": {}},
            {"id": "end", "type": "end",
             "config": {"outputs": [{"variable": "answer", "value_selector": ["shout", "output"]}]}},
            {"id": "orphan", "type": "end", "config": {}},
        ],
        "edges": [{"source": "start", "target": "shout"}, {"source": "shout", "target": "end"},
                  {"source": "shout", "target": "calc"}],
    }
    workflow = api.workflow("Broken", document=document)  # saved: a draft is work in progress
    problems = workflow["problems"]
    assert {p["node_id"] for p in problems} == {"shout", "calc", "orphan"}
    assert all(set(p) == {"node_id", "field", "code", "message"} and p["message"] for p in problems)
    assert ("shout", "config.variables[0].value_selector") in {(p["node_id"], p["field"]) for p in problems}
    assert api.data("GET", f"{WORKFLOWS}/{workflow['id']}")["problems"] == problems

    payload = api.error("POST", f"{WORKFLOWS}/{workflow['id']}/publish", {}, 422, "workflow_invalid")
    assert payload["details"]["problems"] == problems
    assert "more problems" in payload["message"]
    assert api.data("GET", f"{WORKFLOWS}/{workflow['id']}")["published_version"] is None
    assert count(admin_sql, api) == (1, 0)

    # Fixed, it publishes.
    fixed = api.data("PATCH", f"{WORKFLOWS}/{workflow['id']}", {"document": template_document(), "version": 1})
    assert fixed["problems"] == []
    assert api.data("POST", f"{WORKFLOWS}/{workflow['id']}/publish", {}, 201)["number"] == 1


def test_publishing_checks_the_models_and_knowledge_bases_a_document_names(api: Api, other: Api,
                                                                           admin_sql: Sql) -> None:
    own_kb, foreign_kb = uuid.uuid4(), uuid.uuid4()
    for kb_id, tenant in ((own_kb, api), (foreign_kb, other)):
        admin_sql("""INSERT INTO knowledge_bases (id, tenant_id, name, embedding_model, dimensions, chunking,
                                                  retrieval)
                     VALUES (%s, %s, %s, 'all-minilm-l6-v2', 384, '{}', '{}')""",
                  (kb_id, tenant.tenant_id, f"kb-{kb_id.hex[:6]}"))
    retrieval = {"id": "search", "type": "knowledge_retrieval",
                 "config": {"query_variable_selector": ["start", "q"],
                            "knowledge_base_ids": [str(own_kb), str(foreign_kb), str(uuid.uuid4())]}}
    document = chain(llm_node("missing", {"name": "no-such-model"}),
                     llm_node("embedder", {"name": "all-minilm-l6-v2"}),
                     llm_node("long", {"name": "gpt-4o-mini", "max_tokens": 32768}),
                     retrieval, output=["long", "text"])
    workflow = api.workflow("Models", document=document)
    assert workflow["problems"] == []  # the graph itself is fine
    path = f"{WORKFLOWS}/{workflow['id']}"
    payload = api.error("POST", path + "/publish", {}, 422, "workflow_invalid")
    assert problems_of(payload) == [
        ("missing", "config.model.name", "model_not_found"),
        ("embedder", "config.model.name", "model_capability_missing"),
        ("long", "config.model.max_tokens", "less_than_equal"),
        ("search", "config.knowledge_base_ids[1]", "knowledge_base_not_found"),
        ("search", "config.knowledge_base_ids[2]", "knowledge_base_not_found"),
    ]
    assert str(foreign_kb) in payload["details"]["problems"][3]["message"]
    assert "Model 'no-such-model' not found" in payload["message"]
    admin_sql("UPDATE knowledge_bases SET status = 'deleting' WHERE id = %s", (own_kb,))
    payload = api.error("POST", path + "/publish", {}, 422, "workflow_invalid")
    assert ("search", "config.knowledge_base_ids[0]", "knowledge_base_not_found") in problems_of(payload)
    assert api.data("GET", path + "/versions") == []

    retrieval["config"]["knowledge_base_ids"] = [str(foreign_kb)]
    admin_sql("UPDATE knowledge_bases SET status = 'active' WHERE id = %s", (own_kb,))
    fixed = chain(llm_node("answer", {"name": None}), {**retrieval, "config": {**retrieval["config"],
                                                                                "knowledge_base_ids": [str(own_kb)]}},
                  output=["answer", "text"])
    api.data("PATCH", path, {"document": fixed, "version": 1})
    # A node without a model uses the tenant's default chat model: checked too.
    admin_sql("INSERT INTO tenant_model_defaults (tenant_id, chat_model) VALUES (%s, 'all-minilm-l6-v2')",
              (api.tenant_id,))
    payload = api.error("POST", path + "/publish", {}, 422, "workflow_invalid")
    assert problems_of(payload) == [("answer", "config.model.name", "model_capability_missing")]
    api.data("PUT", "/api/v1/models/defaults", {"chat_model": "claude-3-5-haiku"})
    assert api.data("POST", path + "/publish", {}, 201)["number"] == 1


# Import ------------------------------------------------------------------------------------------
def test_import_a_dify_file(api: Api, admin_sql: Sql, monkeypatch: pytest.MonkeyPatch) -> None:
    imported = api.data("POST", IMPORT, {"format": "dify", "content": GREETER}, 201)
    workflow = imported["workflow"]
    assert (workflow["name"], workflow["description"]) == ("Greeter", "Greets a visitor by name")
    assert workflow["version"] == 1 and workflow["published_version"] is None and workflow["problems"] == []
    nodes = {node["id"]: node for node in workflow["document"]["nodes"]}
    assert [nodes[n]["type"] for n in nodes] == ["start", "llm", "end"]
    assert nodes["1711000000002"]["position"] == {"x": 380.0, "y": 282.0}  # the canvas is kept
    # The file's model names none of the tenant's: the tenant's default chat model is used, and said.
    assert nodes["1711000000002"]["config"]["model"]["name"] == "gpt-4o-mini"
    assert imported["substitutions"] == [{"node_id": "1711000000002", "requested": "openai/gpt-4-turbo-preview",
                                          "used": "gpt-4o-mini"}]
    assert imported["warnings"] == []
    assert api.data("GET", f"{WORKFLOWS}/{workflow['id']}") == workflow

    # The file's name, taken, is numbered (and said); a name the caller chose must be free.
    again = api.data("POST", IMPORT, {"format": "dify", "content": GREETER}, 201)
    assert again["workflow"]["name"] == "Greeter (2)"
    assert any("Greeter (2)" in warning for warning in again["warnings"])
    before = count(admin_sql, api)
    api.error("POST", IMPORT, {"format": "dify", "content": GREETER, "name": "greeter"}, 409, "workflow_name_taken")
    assert count(admin_sql, api) == before
    # A platform model the deployment cannot call (no provider key) would only fail at run time:
    # substituted and said; with the key set it is kept.
    with_gpt4o = GREETER.replace("gpt-4-turbo-preview", "gpt-4o")
    unusable = api.data("POST", IMPORT, {"format": "dify", "content": with_gpt4o, "name": "Keyless"}, 201)
    assert unusable["substitutions"] == [{"node_id": "1711000000002", "requested": "openai/gpt-4o",
                                          "used": "gpt-4o-mini"}]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-import-" + "k" * 20)
    named = api.data("POST", IMPORT, {"format": "dify", "content": with_gpt4o, "name": "Mine"}, 201)
    assert named["workflow"]["name"] == "Mine" and named["substitutions"] == []
    assert named["workflow"]["document"]["nodes"][1]["config"]["model"]["name"] == "gpt-4o"
    # An imported workflow publishes like any other.
    assert api.data("POST", f"{WORKFLOWS}/{workflow['id']}/publish", {}, 201)["number"] == 1


def test_an_import_stratus_cannot_run_is_refused_and_creates_nothing(api: Api, admin_sql: Sql) -> None:
    tool = GREETER.replace("type: llm", "type: tool")
    payload = api.error("POST", IMPORT, {"format": "dify", "content": tool}, 422, "workflow_import_unsupported")
    assert [p["node_id"] for p in payload["details"]["problems"]] == ["1711000000002"]
    for content in ("just: [unclosed", "- a list", "kind: dataset\n", "app:\x17 {}"):
        payload = api.call("POST", IMPORT, {"format": "dify", "content": content})
        assert payload.status_code == 422 and payload.json()["code"].startswith("workflow_import_"), payload.text
    for body, field in (({"format": "coze", "content": GREETER}, "body.format"),
                        ({"content": GREETER}, "body.format"),
                        ({"format": "dify", "content": ""}, "body.content"),
                        ({"format": "dify", "content": GREETER, "name": ""}, "body.name"),
                        ({"format": "dify", "content": GREETER, "extra": 1}, "body.extra")):
        payload = api.error("POST", IMPORT, body, 422, "biz_validation_failed")
        assert field in [f["field"] for f in payload["details"]["fields"]], body
    assert count(admin_sql, api) == (0, 0)


def test_an_advanced_chat_app_with_an_end_node_imports_as_a_chatflow_draft_listing_what_to_fix(api: Api) -> None:
    imported = api.data("POST", IMPORT, {"format": "dify",
                                         "content": GREETER.replace("mode: workflow", "mode: advanced-chat")}, 201)
    workflow = imported["workflow"]
    assert workflow["document"]["mode"] == "chatflow"
    assert {(p["node_id"], p["code"]) for p in workflow["problems"]} == {("1711000000003", "end_in_chatflow"),
                                                                        (None, "missing_answer")}
    api.error("POST", f"{WORKFLOWS}/{workflow['id']}/publish", {}, 422, "workflow_invalid")


# Export ------------------------------------------------------------------------------------------
def test_export_is_a_dify_file_that_imports_back_unchanged(api: Api, other: Api) -> None:
    workflow = api.data("POST", IMPORT, {"format": "dify", "content": GREETER}, 201)["workflow"]
    path = f"{WORKFLOWS}/{workflow['id']}"
    response = api.call("GET", path + "/export", expect=200, format="dify")
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.headers["content-disposition"] == 'attachment; filename="Greeter.yml"; ' \
                                                      "filename*=UTF-8''Greeter.yml"
    assert response.headers["x-request-id"]
    exported = yaml.safe_load(response.text)
    assert exported["kind"] == "app" and exported["app"]["name"] == "Greeter"
    assert exported["app"]["mode"] == "workflow"

    back = api.data("POST", IMPORT, {"format": "dify", "content": response.text, "name": "Round trip"}, 201)
    assert back["workflow"]["document"] == workflow["document"] and back["substitutions"] == []

    # A published version exports as it was published, whatever the draft became since.
    api.data("POST", path + "/publish", {}, 201)
    api.data("PATCH", path, {"name": "Renamed", "document": template_document(), "version": 1})
    published = api.call("GET", path + "/export", expect=200, format="dify", version=1)
    assert published.text == response.text
    draft = api.call("GET", path + "/export", expect=200, format="dify")
    assert yaml.safe_load(draft.text)["app"]["name"] == "Renamed"
    assert draft.headers["content-disposition"].startswith('attachment; filename="Renamed.yml";')

    api.error("GET", path + "/export", None, 404, "workflow_version_not_found", format="dify", version=2)
    for params, field in (({}, "query.format"), ({"format": "json"}, "query.format"),
                          ({"format": "dify", "version": 0}, "query.version")):
        payload = api.error("GET", path + "/export", None, 422, "biz_validation_failed", **params)
        assert field in [f["field"] for f in payload["details"]["fields"]], params
    other.error("GET", path + "/export", None, 404, "workflow_not_found", format="dify")
    assert api.member("viewer").call("GET", path + "/export", expect=200, format="dify").text == draft.text


def test_an_export_names_its_file_safely(api: Api) -> None:
    from urllib.parse import unquote

    workflow = api.workflow('Q3 "report" / 季度\\name')
    response = api.call("GET", f"{WORKFLOWS}/{workflow['id']}/export", expect=200, format="dify")
    plain, exact = response.headers["content-disposition"].split("; ")[1:]
    # Quotes, separators and non-ASCII never reach the plain name; the exact name keeps the
    # text (UTF-8, percent-encoded) but no path separator.
    assert plain == 'filename="Q3 _report_ _ __name.yml"'
    assert exact.startswith("filename*=UTF-8''") and unquote(exact.split("''", 1)[1]) == 'Q3 "report" _ 季度_name.yml'
    assert yaml.safe_load(response.text)["app"]["name"] == 'Q3 "report" / 季度\\name'
