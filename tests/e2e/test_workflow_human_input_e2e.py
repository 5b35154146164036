"""Human input and sub-workflows through the whole local runtime over HTTP (moto's Step
Functions running the interpreter, real PostgreSQL and Redis): a run pauses with its form, is
answered, finishes; bad answers, wrong nodes, stale resumes and strangers are refused; a pause
times out into its defaults; a paused run is cancelled; a sub-workflow runs inline, and
publishing refuses cycles and missing targets (docs/adr/0036-human-input-and-sub-workflows.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import RunningRuntime, start_runtime

SYNC_WAIT_S = 5


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    running = start_runtime(tmp_path_factory.mktemp("e2e-human") / "state", WORKFLOW_SYNC_WAIT_S=str(SYNC_WAIT_S))
    yield running
    running.stop()


class Tenant:
    def __init__(self, runtime: RunningRuntime, name: str) -> None:
        self.http = httpx.Client(base_url=runtime.url, timeout=60)
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        created = self.http.post("/api/v1/tenants", json={"name": name}, headers=admin)
        assert created.status_code == 201, created.text
        self.headers = {"Authorization": f"Bearer {created.json()['data']['owner_token']}"}

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def create(self, name: str, nodes: list[dict[str, Any]], edges: list[tuple[str, ...]]) -> str:
        workflow = self.call("POST", "/api/v1/workflows", 201, json={"name": name, "document": document(nodes, edges)})
        return str(workflow["data"]["id"])

    def published(self, name: str, nodes: list[dict[str, Any]], edges: list[tuple[str, ...]]) -> str:
        workflow_id = self.create(name, nodes, edges)
        self.call("POST", f"/api/v1/workflows/{workflow_id}/publish", 201, json={})
        return workflow_id

    def run(self, workflow_id: str, expect: int, **body: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("POST", f"/api/v1/workflows/{workflow_id}/runs", expect, json=body)["data"]
        return answer

    def get(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.call("GET", f"/api/v1/workflow-runs/{run_id}", 200)["data"]
        return run

    def wait(self, run_id: str, *statuses: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.get(run_id)
            if run["status"] in statuses:
                return run
            assert time.monotonic() < deadline, run
            time.sleep(0.2)


def document(nodes: list[dict[str, Any]], edges: list[tuple[str, ...]]) -> dict[str, Any]:
    return {"nodes": nodes, "edges": [
        {"source": edge[0], "target": edge[-1], **({"source_handle": edge[1]} if len(edge) == 3 else {})}
        for edge in edges]}


@pytest.fixture(scope="module")
def tenant(runtime: RunningRuntime) -> Tenant:
    return Tenant(runtime, "e2e-human-input")


def start(*variables: dict[str, Any]) -> dict[str, Any]:
    return {"id": "start", "type": "start", "config": {"variables": list(variables)}}


def end(**outputs: list[str]) -> dict[str, Any]:
    return {"id": "end", "type": "end", "config": {"outputs": [
        {"variable": name, "value_selector": selector} for name, selector in outputs.items()]}}


def review(**config: Any) -> dict[str, Any]:
    return {"id": "review", "type": "human_input", "title": "Review", "config": {
        "form_content": "Review the draft about {{#start.topic#}}",
        "fields": [{"name": "verdict", "label": "Verdict", "type": "select", "options": ["ship", "hold"],
                    "required": True, "default": "hold"},
                   {"name": "score", "type": "number", "required": True, "default": 0},
                   {"name": "notes", "type": "paragraph", "max_length": 50}], **config}}


TOPIC = {"variable": "topic", "type": "string", "required": True}


def test_a_run_pauses_shows_its_form_and_finishes_once_answered(runtime: RunningRuntime, tenant: Tenant) -> None:
    workflow = tenant.published("review", [
        start(TOPIC), review(),
        {"id": "summary", "type": "template", "config": {"template": "{{ v }}/{{ s }}", "variables": [
            {"variable": "v", "value_selector": ["review", "verdict"]},
            {"variable": "s", "value_selector": ["review", "score"]}]}},
        end(summary=["summary", "output"], notes=["review", "notes"])],
        [("start", "review"), ("review", "summary"), ("summary", "end")])
    began = time.monotonic()
    run = tenant.run(workflow, 202, inputs={"topic": "moths"})
    # A sync caller is answered once the run pauses, not at the end of the sync bound.
    assert time.monotonic() - began < SYNC_WAIT_S
    assert run["status"] == "paused", run
    pause = run["pause"]
    assert pause["node_id"] == "review" and pause["expires_at"] is None and pause["paused_at"]
    assert pause["form"]["content"] == "Review the draft about moths"
    assert [f["name"] for f in pause["form"]["fields"]] == ["verdict", "score", "notes"]
    assert pause["form"]["fields"][0]["options"] == ["ship", "hold"]
    listed = tenant.call("GET", f"/api/v1/workflows/{workflow}/runs?status=paused", 200)["data"]
    assert [item["id"] for item in listed] == [run["id"]]
    resume = f"/api/v1/workflow-runs/{run['id']}/resume"
    # Bad answers change nothing: 422 naming each field.
    bad = tenant.call("POST", resume, 422, json={"node_id": "review", "answer": {
        "verdict": "maybe", "score": "many", "notes": "x" * 51, "extra": 1}})
    assert bad["code"] == "workflow_answer_invalid"
    assert sorted(f["field"] for f in bad["details"]["fields"]) == [
        "answer.extra", "answer.notes", "answer.score", "answer.verdict"]
    wrong = tenant.call("POST", resume, 409, json={"node_id": "summary", "answer": {}})
    assert wrong["code"] == "workflow_run_not_paused" and "'review'" in wrong["message"]
    Tenant(runtime, "e2e-human-input-stranger").call("POST", resume, 404, json={"node_id": "review", "answer": {}})
    assert tenant.get(run["id"])["status"] == "paused"
    resumed = tenant.call("POST", resume, 202, json={"node_id": "review", "answer": {"verdict": "ship", "score": "7"}})
    assert resumed["data"]["status"] in ("running", "succeeded") and resumed["data"]["pause"] is None
    finished = tenant.wait(run["id"], "succeeded", "failed")
    assert finished["status"] == "succeeded", finished
    assert finished["outputs"] == {"summary": "ship/7", "notes": None}
    node = next(n for n in finished["nodes"] if n["node_id"] == "review")
    assert node["status"] == "succeeded" and node["outputs"] == {"verdict": "ship", "score": 7, "notes": None}
    # A stale resume: the pause is over.
    stale = tenant.call("POST", resume, 409, json={"node_id": "review", "answer": {"verdict": "hold"}})
    assert stale["code"] == "workflow_run_not_paused" and "succeeded" in stale["message"]


def test_a_pause_times_out_into_its_defaults(tenant: Tenant) -> None:
    workflow = tenant.published("review with timeout", [
        start(TOPIC), review(timeout_s=1, on_timeout="default"),
        end(verdict=["review", "verdict"], score=["review", "score"])],
        [("start", "review"), ("review", "end")])
    run = tenant.run(workflow, 202, inputs={"topic": "owls"}, mode="async")
    finished = tenant.wait(run["id"], "succeeded", "failed", timeout_s=60)
    assert finished["status"] == "succeeded", finished
    assert finished["outputs"] == {"verdict": "hold", "score": 0}


def test_a_paused_run_can_be_cancelled(tenant: Tenant) -> None:
    workflow = tenant.published("review to cancel", [start(TOPIC), review(), end()],
                                [("start", "review"), ("review", "end")])
    run = tenant.run(workflow, 202, inputs={"topic": "bats"})
    assert run["status"] == "paused"
    cancelled = tenant.call("POST", f"/api/v1/workflow-runs/{run['id']}/cancel", 200)["data"]
    assert cancelled["status"] == "cancelled" and cancelled["pause"] is None
    assert {n["node_id"]: n["status"] for n in cancelled["nodes"]}["review"] == "cancelled"
    late = tenant.call("POST", f"/api/v1/workflow-runs/{run['id']}/resume", 409,
                       json={"node_id": "review", "answer": {}})
    assert "cancelled" in late["message"]


def shout(workflow_id: str | None = None) -> list[dict[str, Any]]:
    """A workflow answering its word upper-cased, or, given ``workflow_id``, calling that one."""
    if workflow_id is None:
        middle = {"id": "shout", "type": "template", "config": {"template": "{{ w | upper }}!", "variables": [
            {"variable": "w", "value_selector": ["start", "word"]}]}}
        return [start({"variable": "word", "type": "string", "required": True}), middle,
                end(loud=["shout", "output"])]
    return [start({"variable": "word", "type": "string", "required": True}), call(workflow_id),
            end(loud=["shout", "loud"])]


def call(workflow_id: str, version: int | None = None) -> dict[str, Any]:
    return {"id": "shout", "type": "sub_workflow", "config": {
        "workflow_id": workflow_id, **({"version": version} if version else {}),
        "inputs": [{"variable": "word", "value_selector": ["start", "word"]}],
        "outputs": [{"variable": "loud", "type": "string"}]}}


CHAIN = [("start", "shout"), ("shout", "end")]


def test_a_sub_workflow_runs_inline_and_publishing_refuses_cycles_and_missing_targets(tenant: Tenant) -> None:
    child = tenant.published("shouter", shout(), CHAIN)
    parent = tenant.published("caller", shout(child), CHAIN)
    run = tenant.run(parent, 200, inputs={"word": "hey"})
    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"loud": "HEY!"}
    node = next(n for n in run["nodes"] if n["node_id"] == "shout")
    assert node["outputs"] == {"loud": "HEY!"}
    assert [c["node_id"] for c in node["children"]] == ["start", "shout", "end"]
    # The child calling its caller back: A → B → A is refused at publish, located on the node.
    draft = tenant.call("GET", f"/api/v1/workflows/{child}", 200)["data"]
    tenant.call("PATCH", f"/api/v1/workflows/{child}", 200, json={
        "version": draft["version"], "document": document(shout(parent), CHAIN)})
    refused = tenant.call("POST", f"/api/v1/workflows/{child}/publish", 422, json={})
    problems = refused["details"]["problems"]
    assert [(p["node_id"], p["field"], p["code"]) for p in problems] == [
        ("shout", "config.workflow_id", "sub_workflow_cycle")]
    assert f"{child} → {parent} → {child}" in problems[0]["message"]
    # A target never published, and an unknown output: located 422s.
    unpublished = tenant.create("unpublished", shout(), CHAIN)
    broken = tenant.create("broken caller", [*shout(unpublished)[:1], call(unpublished), end(loud=["shout", "loud"])],
                           CHAIN)
    codes = {p["code"] for p in tenant.call("POST", f"/api/v1/workflows/{broken}/publish", 422,
                                            json={})["details"]["problems"]}
    assert codes == {"sub_workflow_not_published"}
    # A Dify workflow tool naming the tenant's workflow imports as a sub-workflow calling it.
    dsl = yaml.safe_dump({"app": {"mode": "workflow", "name": "from dify"}, "kind": "app", "version": "0.3.1",
                          "workflow": {"graph": {"nodes": [
                              {"id": "start", "data": {"type": "start", "variables": [
                                  {"variable": "word", "type": "text-input", "label": "w", "required": True}]}},
                              {"id": "shout", "data": {"type": "tool", "provider_type": "workflow",
                                                       "provider_id": "dify-provider-id", "provider_name": "Shouter",
                                                       "tool_parameters": {"word": {"type": "variable",
                                                                                    "value": ["start", "word"]}}}},
                              {"id": "end", "data": {"type": "end", "outputs": [
                                  {"variable": "loud", "value_selector": ["shout", "loud"]}]}}],
                              "edges": [{"source": "start", "target": "shout"},
                                        {"source": "shout", "target": "end"}]}}})
    imported = tenant.call("POST", "/api/v1/workflows/import", 201,
                           json={"format": "dify", "content": dsl})["data"]["workflow"]
    call_node = next(n for n in imported["document"]["nodes"] if n["id"] == "shout")
    assert call_node["type"] == "sub_workflow" and call_node["config"]["workflow_id"] == child
    assert call_node["config"]["outputs"] == [{"variable": "loud", "type": None}]
    assert imported["problems"] == []
    # A target deleted after publishing fails the node at run time.
    tenant.call("DELETE", f"/api/v1/workflows/{child}", 204)
    failed = tenant.run(parent, 200, inputs={"word": "hey"})
    assert failed["status"] == "failed"
    assert failed["error"]["node_id"] == "shout" and failed["error"]["code"] == "sub_workflow_not_found"
