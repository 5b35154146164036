"""Workflow definitions through the API: drafts (a starter graph, saved as sent, shape and size
checked, optimistic locking, soft delete, names unique per tenant), publishing numbered
immutable versions, tenant isolation on every route, roles, API keys bound to a workflow, and
the workflow a run executes (``resolve_for_run``). Validation content, Dify import and export:
tests/integration/test_workflow_import_api.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from shared.errors import ValidationFailed
from shared.workflows.errors import WorkflowNotFound, WorkflowNotPublished, WorkflowVersionNotFound
from shared.workflows.wiring_api import workflow_service
from tests.support.api import ApiClient
from tests.support.workflow_api import WORKFLOWS, Api, Sql, count, template_document


@pytest.fixture
def api(client: TestClient, new_tenant: Callable[..., dict[str, Any]]) -> Api:
    return Api(client, new_tenant())


@pytest.fixture
def other(client: TestClient, new_tenant: Callable[..., dict[str, Any]]) -> Api:
    return Api(client, new_tenant())


def fields_of(payload: dict[str, Any]) -> list[str]:
    return [f["field"] for f in payload["details"]["fields"]]


# Drafts -------------------------------------------------------------------------------------
def test_a_new_workflow_starts_with_a_start_node_linked_to_an_end_node(api: Api) -> None:
    created = api.workflow("Onboarding", description="Greets new users")
    assert created["version"] == 1 and created["published_version"] is None and created["published_at"] is None
    assert created["created_by"] == created["updated_by"] == api.tenant["owner"]["user_id"]
    document = created["document"]
    assert document["schema_version"] == 1
    assert [(n["id"], n["type"]) for n in document["nodes"]] == [("start", "start"), ("end", "end")]
    assert [(e["source"], e["source_handle"], e["target"]) for e in document["edges"]] == [("start", "source", "end")]
    assert created["problems"] == []
    assert api.data("GET", f"{WORKFLOWS}/{created['id']}") == created

    listed = api.call("GET", WORKFLOWS, expect=200).json()
    assert [w["id"] for w in listed["data"]] == [created["id"]] and listed["pagination"]["total"] == 1
    # Lists carry no documents (a document may be up to 1 MB).
    assert set(listed["data"][0]) == set(created) - {"document", "problems"}


def test_a_draft_is_saved_as_sent_with_defaults_filled(api: Api) -> None:
    created = api.workflow("Greeter", document=template_document())
    nodes = {n["id"]: n for n in created["document"]["nodes"]}
    assert nodes["greet"]["config"]["template"] == "Hello {{ name }}"
    assert nodes["greet"]["retry"] == {"max_attempts": 1, "interval_ms": 1000}
    assert nodes["greet"]["error_strategy"] == "fail" and nodes["greet"]["timeout_s"] is None
    assert created["problems"] == []
    # Work in progress saves: an edge to a node that is not there yet is a problem, not a 422.
    unfinished = template_document()
    unfinished["edges"].append({"source": "end", "target": "later"})
    saved = api.workflow("Unfinished", document=unfinished)
    assert saved["document"]["edges"][-1]["target"] == "later" and saved["problems"]


def test_list_pages_sorts_and_filters_by_name(api: Api) -> None:
    for name in ("Alpha report", "Beta REPORT", "Gamma", "100%_done"):
        api.workflow(name)
    assert [w["name"] for w in api.data("GET", WORKFLOWS, sort="name")] == [
        "100%_done", "Alpha report", "Beta REPORT", "Gamma"]
    assert [w["name"] for w in api.data("GET", WORKFLOWS, name="report", sort="-name")] == [
        "Beta REPORT", "Alpha report"]
    assert [w["name"] for w in api.data("GET", WORKFLOWS, name="%_")] == ["100%_done"]  # no wildcards
    page = api.call("GET", WORKFLOWS, expect=200, page=2, limit=3, sort="created_at").json()
    assert [w["name"] for w in page["data"]] == ["100%_done"]
    assert page["pagination"] == {"page": 2, "limit": 3, "total": 4, "total_pages": 2, "has_next": False,
                                 "has_prev": True}
    api.error("GET", WORKFLOWS, None, 422, "biz_validation_failed", sort="document")


def test_bad_input_answers_422_or_400_and_changes_nothing(api: Api, admin_sql: Sql) -> None:
    too_many = {"nodes": [{"id": f"n{i}", "type": "template", "config": {}} for i in range(201)]}
    big = {"nodes": [{"id": "t", "type": "template", "config": {"template": "x" * 1_000_000}}]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "a", "colour": "red"}, "body.colour"),
        ({"name": ""}, "body.name"),
        ({"name": "a" * 101}, "body.name"),
        ({"name": "a", "description": "d" * 2001}, "body.description"),
        ({"name": "a", "document": {"schema_version": 2}}, "body.document.schema_version"),
        ({"name": "a", "document": {"nodes": [{"id": "x", "type": "robot"}]}}, "body.document.nodes.0.type"),
        ({"name": "a", "document": {"nodes": [{"id": "bad id!", "type": "start"}]}}, "body.document.nodes.0.id"),
        ({"name": "a", "document": {"nodes": [{"id": "s", "type": "start", "retry": {"max_attempts": 11}}]}},
         "body.document.nodes.0.retry.max_attempts"),
        ({"name": "a", "document": {"nodes": [{"id": "s", "type": "start", "config": []}]}},
         "body.document.nodes.0.config"),
        ({"name": "a", "document": {"edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "b"}]}},
         "body.document.edges"),
        ({"name": "a", "document": too_many}, "body.document.nodes"),
        ({"name": "a", "document": big}, "body.document"),
        ({"name": "a", "document": {"nodes": [{"id": "s", "type": "start", "config": {"x": "\u0000"}}]}}, "body"),
    ]
    before = count(admin_sql, api)
    for body, field in cases:
        payload = api.error("POST", WORKFLOWS, body, 422, "biz_validation_failed")
        assert field in fields_of(payload), (field, payload)
    # NaN is no JSON number (Python's decoder reads it): refused, never a 500 from PostgreSQL.
    response = api.client.post(WORKFLOWS, headers={**api.headers, "content-type": "application/json"},
                               content='{"name": "nan", "document": {"nodes": [{"id": "t", "type": "template", '
                                       '"config": {"x": NaN}}]}}')
    assert response.status_code in (400, 422), response.text
    # A NUL in the name filter: PostgreSQL text cannot hold it, so a 422 rather than its error.
    assert "query.name" in fields_of(api.error("GET", WORKFLOWS, None, 422, "biz_validation_failed", name="a\x00"))
    malformed = api.client.post(WORKFLOWS, headers={**api.headers, "content-type": "application/json"},
                                content='{"name": "x", "document": {')
    assert (malformed.status_code, malformed.json()["code"]) == (400, "biz_malformed_json")
    assert count(admin_sql, api) == before == (0, 0)

    workflow = api.workflow("Kept", document=template_document())
    path = f"{WORKFLOWS}/{workflow['id']}"
    for body, field in (({"version": 0}, "body.version"), ({"name": "x"}, "body.version"),
                        ({"document": {"nodes": "x"}, "version": 1}, "body.document.nodes"),
                        ({"document": big, "version": 1}, "body.document"),
                        ({"version": 2**31}, "body.version")):
        assert field in fields_of(api.error("PATCH", path, body, 422, "biz_validation_failed")), body
    api.error("POST", path + "/publish", {"note": "n" * 1001}, 422, "biz_validation_failed")
    assert api.data("GET", path) == workflow
    assert count(admin_sql, api) == (1, 0)


def test_names_are_unique_per_tenant_ignoring_case(api: Api, other: Api) -> None:
    api.workflow("Helper")
    payload = api.error("POST", WORKFLOWS, {"name": "HELPER"}, 409, "workflow_name_taken")
    assert payload["details"] == {"name": "HELPER"}
    other.workflow("helper")  # another tenant may use it
    second = api.workflow("Second")
    api.error("PATCH", f"{WORKFLOWS}/{second['id']}", {"name": "helper", "version": 1}, 409, "workflow_name_taken")
    assert api.data("GET", f"{WORKFLOWS}/{second['id']}")["name"] == "Second"


def test_update_with_optimistic_locking(api: Api) -> None:
    workflow = api.workflow("Editor")
    path = f"{WORKFLOWS}/{workflow['id']}"
    editor = api.member("developer")
    updated = editor.data("PATCH", path, {"name": "Editor 2", "document": template_document("Hi {{ name }}"),
                                          "version": 1})
    assert updated["version"] == 2 and updated["name"] == "Editor 2" and updated["description"] == ""
    assert updated["updated_by"] != updated["created_by"] == api.tenant["owner"]["user_id"]
    assert updated["updated_at"] > workflow["updated_at"] and updated["created_at"] == workflow["created_at"]
    assert [n["id"] for n in updated["document"]["nodes"]] == ["start", "greet", "end"]
    stale = api.error("PATCH", path, {"description": "late", "version": 1}, 409, "workflow_version_conflict")
    assert stale["details"]["version"] == 2
    api.error("PATCH", path, {"version": 1}, 409, "workflow_version_conflict")
    assert api.data("GET", path) == updated
    # Fields left out keep their value; a change without a field changes nothing but answers.
    described = api.data("PATCH", path, {"description": "now", "version": 2})
    assert described["version"] == 3 and described["document"] == updated["document"]
    assert api.data("PATCH", path, {"version": 3}) == described


def test_soft_delete_then_404_and_the_name_is_free(api: Api, admin_sql: Sql) -> None:
    workflow = api.workflow("Temp", document=template_document())
    path = f"{WORKFLOWS}/{workflow['id']}"
    api.data("POST", path + "/publish", {}, 201)
    api.call("DELETE", path, expect=204)
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"name": "x", "version": 2}), ("DELETE", "", None),
                                 ("POST", "/publish", {}), ("GET", "/versions", None), ("GET", "/versions/1", None)):
        api.error(method, path + suffix, body, 404, "workflow_not_found")
    assert api.data("GET", WORKFLOWS) == []
    assert admin_sql("SELECT deleted_at IS NOT NULL FROM workflows WHERE id = %s", (workflow["id"],)) == [(True,)]
    assert admin_sql("SELECT count(*) FROM workflow_versions WHERE workflow_id = %s", (workflow["id"],)) == [(1,)]
    assert api.workflow("temp")["id"] != workflow["id"]
    for malformed in ("not-an-id", "00000000-0000-0000-0000-00000000000g", str(uuid.uuid4())):
        api.error("GET", f"{WORKFLOWS}/{malformed}", None, 404, "workflow_not_found")


# Publishing ---------------------------------------------------------------------------------
def test_publish_numbers_immutable_versions_and_lists_them(api: Api) -> None:
    workflow = api.workflow("Publisher", description="v1 text", document=template_document("One {{ name }}"))
    path = f"{WORKFLOWS}/{workflow['id']}"
    api.error("POST", path + "/publish", {"nope": 1}, 422, "biz_validation_failed")
    first = api.data("POST", path + "/publish", {"note": "first"}, 201)
    assert first["number"] == 1 and first["note"] == "first" and first["workflow_id"] == workflow["id"]
    assert first["name"] == "Publisher" and first["description"] == "v1 text"
    assert first["document"] == workflow["document"]
    assert first["created_by"] == api.tenant["owner"]["user_id"]
    after = api.data("GET", path)
    # Publishing is not a draft edit: the draft's version stays, so an open editor can still save.
    assert after["published_version"] == 1 and after["published_at"] and after["version"] == 1

    api.data("PATCH", path, {"name": "Publisher v2", "document": template_document("Two {{ name }}"), "version": 1})
    api.error("POST", path + "/publish", {"version": 1}, 409, "workflow_version_conflict")
    second = api.data("POST", path + "/publish", {"version": 2}, 201)
    assert second["number"] == 2 and second["name"] == "Publisher v2"
    assert api.call("POST", path + "/publish", expect=201).json()["data"]["number"] == 3  # no body needed
    assert api.data("GET", path)["published_version"] == 3

    versions = api.call("GET", path + "/versions", expect=200).json()
    assert [v["number"] for v in versions["data"]] == [3, 2, 1] and versions["pagination"]["total"] == 3
    assert "document" not in versions["data"][0]
    page = api.call("GET", path + "/versions", limit=2, page=2, expect=200).json()
    assert [v["number"] for v in page["data"]] == [1]
    assert [v["number"] for v in api.data("GET", path + "/versions", sort="number")] == [1, 2, 3]
    templates = [api.data("GET", f"{path}/versions/{n}")["document"]["nodes"][1]["config"]["template"]
                 for n in (1, 2, 3)]
    assert templates == ["One {{ name }}", "Two {{ name }}", "Two {{ name }}"]
    for missing in ("4", "0", "x", "99999999999"):
        api.error("GET", f"{path}/versions/{missing}", None, 404, "workflow_version_not_found")


def test_published_versions_are_immutable_for_the_application_role(api: Api, pg: Any) -> None:
    import psycopg

    from shared.db.database import SingleConnectionDatabase

    workflow = api.workflow("Immutable", document=template_document())
    api.data("POST", f"{WORKFLOWS}/{workflow['id']}/publish", {}, 201)
    db = SingleConnectionDatabase(pg.app_url)
    try:
        for statement in ("UPDATE workflow_versions SET note = 'changed'", "DELETE FROM workflow_versions",
                          "DELETE FROM workflows"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction(api.tenant_id) as conn:
                conn.execute(statement)
        with db.transaction(api.tenant_id) as conn:
            assert conn.execute("SELECT count(*) FROM workflow_versions").fetchone() == (1,)
        # Row-level security: another tenant's transaction sees none of them.
        with db.transaction(uuid.uuid4()) as conn:
            assert conn.execute("SELECT count(*) FROM workflows").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM workflow_versions").fetchone() == (0,)
    finally:
        db.close()
    assert api.data("GET", f"{WORKFLOWS}/{workflow['id']}/versions/1")["note"] == ""


# Isolation and roles --------------------------------------------------------------------------
def test_another_tenants_workflow_is_not_found_on_every_route(api: Api, other: Api, admin_sql: Sql) -> None:
    workflow = api.workflow("Private", document=template_document())
    api.data("POST", f"{WORKFLOWS}/{workflow['id']}/publish", {}, 201)
    path = f"{WORKFLOWS}/{workflow['id']}"
    before = count(admin_sql, api)
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"name": "x", "version": 1}), ("DELETE", "", None),
                                 ("POST", "/publish", {}), ("GET", "/versions", None),
                                 ("GET", "/versions/1", None), ("GET", "/export?format=dify", None)):
        payload = other.error(method, path + suffix, body, 404, "workflow_not_found")
        assert "Private" not in json.dumps(payload)
    assert other.data("GET", WORKFLOWS) == []
    assert count(admin_sql, api) == before
    assert api.data("GET", path)["name"] == "Private"


def test_viewers_read_but_cannot_write(api: Api) -> None:
    workflow = api.workflow("Shared", document=template_document())
    path = f"{WORKFLOWS}/{workflow['id']}"
    api.data("POST", path + "/publish", {}, 201)
    viewer = api.member("viewer")
    assert viewer.data("GET", path)["name"] == "Shared"
    assert len(viewer.data("GET", WORKFLOWS)) == 1
    assert viewer.data("GET", path + "/versions/1")["number"] == 1
    for method, route, body in (("POST", WORKFLOWS, {"name": "v"}), ("PATCH", path, {"version": 1}),
                                ("DELETE", path, None), ("POST", path + "/publish", {}),
                                ("POST", WORKFLOWS + "/import", {"format": "dify", "content": "app: {}"})):
        viewer.error(method, route, body, 403, "auth_permission_denied")
    assert api.data("GET", path)["version"] == 1 and len(api.data("GET", path + "/versions")) == 1
    # A developer builds: writes and publishes.
    developer = api.member("developer")
    assert developer.data("POST", path + "/publish", {}, 201)["number"] == 2


# API keys bound to a workflow -------------------------------------------------------------------
def test_a_key_binds_to_a_workflow_of_its_tenant_only(api: Api, other: Api, admin_sql: Sql) -> None:
    mine = api.workflow("Mine")
    theirs = other.workflow("Theirs")
    gone = api.workflow("Gone")
    api.call("DELETE", f"{WORKFLOWS}/{gone['id']}", expect=204)
    keys_before = admin_sql("SELECT count(*) FROM api_keys WHERE tenant_id = %s", (api.tenant_id,))
    for resource_id in (theirs["id"], gone["id"], str(uuid.uuid4())):
        payload = api.error("POST", "/api/v1/api-keys", {"name": "bound", "resource_type": "workflow",
                                                          "resource_id": resource_id}, 404, "workflow_not_found")
        assert "Theirs" not in json.dumps(payload)
    assert admin_sql("SELECT count(*) FROM api_keys WHERE tenant_id = %s", (api.tenant_id,)) == keys_before
    key = api.data("POST", "/api/v1/api-keys", {"name": "bound", "resource_type": "workflow",
                                                "resource_id": mine["id"], "scopes": ["workflow:read"]}, 201)
    assert (key["resource_type"], key["resource_id"]) == ("workflow", mine["id"])
    bound = ApiClient(api.client, key["token"])
    assert bound.data("GET", f"{WORKFLOWS}/{mine['id']}")["name"] == "Mine"
    bound.error("POST", WORKFLOWS, {"name": "nope"}, 403, "auth_permission_denied")
    # A key bound to a workflow makes keys bound to it only.
    minted = api.data("POST", "/api/v1/api-keys", {"name": "binder", "resource_type": "workflow",
                                                   "resource_id": mine["id"], "scopes": ["apikey:manage"]}, 201)
    child = ApiClient(api.client, minted["token"]).data("POST", "/api/v1/api-keys", {"name": "child"}, 201)
    assert (child["resource_type"], child["resource_id"]) == ("workflow", mine["id"])


# The workflow a run executes ---------------------------------------------------------------------
def test_resolve_for_run_published_versions_and_the_draft(api: Api) -> None:
    service = workflow_service()
    workflow = api.workflow("Runner", document=template_document("One {{ name }}"))
    workflow_id = uuid.UUID(workflow["id"])
    with pytest.raises(WorkflowNotPublished) as not_published:
        service.resolve_for_run(api.tenant_id, workflow_id)
    assert not_published.value.status == 409 and not_published.value.code == "workflow_not_published"
    draft = service.resolve_for_run(api.tenant_id, workflow_id, "draft")
    assert draft.version is None and draft.name == "Runner" and draft.document.nodes[1].id == "greet"

    api.data("POST", f"{WORKFLOWS}/{workflow['id']}/publish", {}, 201)
    api.data("PATCH", f"{WORKFLOWS}/{workflow['id']}", {"document": template_document("Two {{ name }}"),
                                                        "version": 1})
    latest = service.resolve_for_run(api.tenant_id, workflow_id)
    assert latest.version == 1 and latest.document.nodes[1].config["template"] == "One {{ name }}"
    assert service.resolve_for_run(api.tenant_id, workflow_id, 1) == latest
    assert service.resolve_for_run(api.tenant_id, workflow_id, "draft").document.nodes[1].config["template"] == \
        "Two {{ name }}"
    with pytest.raises(WorkflowVersionNotFound):
        service.resolve_for_run(api.tenant_id, workflow_id, 2)
    with pytest.raises(WorkflowNotFound):
        service.resolve_for_run(uuid.uuid4(), workflow_id)
    assert service.workflow_id(api.tenant_id, workflow_id) == workflow_id

    broken = template_document()
    broken["edges"] = broken["edges"][:1]  # the end node is no longer reached
    api.data("PATCH", f"{WORKFLOWS}/{workflow['id']}", {"document": broken, "version": 2})
    with pytest.raises(ValidationFailed) as invalid:
        service.resolve_for_run(api.tenant_id, workflow_id, "draft")
    assert invalid.value.code == "workflow_invalid" and invalid.value.details["problems"]
    assert service.resolve_for_run(api.tenant_id, workflow_id).version == 1  # the published one still runs
    api.call("DELETE", f"{WORKFLOWS}/{workflow['id']}", expect=204)
    with pytest.raises(WorkflowNotFound):
        service.resolve_for_run(api.tenant_id, workflow_id)
