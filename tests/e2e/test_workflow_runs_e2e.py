"""Workflow runs through the whole local runtime over HTTP (moto's Step Functions running the
interpreter, real PostgreSQL, S3 for large outputs, the local code sandbox): a run that outlives
the sync bound, cancel mid-run, large outputs by reference, retry then success, the failure
branch and default value strategies, code limits, and who may see which run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningRuntime, start_runtime

SYNC_WAIT_S = 3


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    # A short sync bound so that "outlives the sync bound" takes seconds; loopback reachable for
    # the HTTP nodes' local target.
    running = start_runtime(tmp_path_factory.mktemp("e2e-runs") / "state", WORKFLOW_SYNC_WAIT_S=str(SYNC_WAIT_S),
                            STRATUS_EGRESS_ALLOW="127.0.0.1")
    yield running
    running.stop()


class Flaky:
    """A local HTTP target: ``/flaky/<key>`` fails (500) the first ``failures`` calls of each key,
    then answers 200; ``/down`` always answers 503."""

    def __init__(self, failures: int = 2) -> None:
        self.failures = failures
        self.calls: dict[str, int] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/flaky/"):
                    count = owner.calls[self.path] = owner.calls.get(self.path, 0) + 1
                    status = 500 if count <= owner.failures else 200
                else:
                    status = 503
                body = f'{{"status": {status}}}'.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def target() -> Iterator[Flaky]:
    flaky = Flaky()
    yield flaky
    flaky.server.shutdown()


class Tenant:
    def __init__(self, runtime: RunningRuntime, name: str) -> None:
        self.http = httpx.Client(base_url=runtime.url, timeout=60)
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        created = self.http.post("/api/v1/tenants", json={"name": name}, headers=admin)
        assert created.status_code == 201, created.text
        self.headers = {"Authorization": f"Bearer {created.json()['data']['owner_token']}"}

    def call(self, method: str, path: str, expect: int, *, headers: dict[str, str] | None = None,
             **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=headers or self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response

    def published(self, name: str, nodes: list[dict[str, Any]], edges: list[tuple[str, ...]]) -> str:
        document = {"nodes": nodes, "edges": [
            {"source": edge[0], "target": edge[-1], **({"source_handle": edge[1]} if len(edge) == 3 else {})}
            for edge in edges]}
        workflow = self.call("POST", "/api/v1/workflows", 201, json={"name": name, "document": document})
        workflow_id = str(workflow.json()["data"]["id"])
        self.call("POST", f"/api/v1/workflows/{workflow_id}/publish", 201, json={})
        return workflow_id

    def run(self, workflow_id: str, expect: int, **body: Any) -> httpx.Response:
        return self.call("POST", f"/api/v1/workflows/{workflow_id}/runs", expect, json=body)

    def wait(self, run_id: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            run: dict[str, Any] = self.call("GET", f"/api/v1/workflow-runs/{run_id}", 200).json()["data"]
            if run["status"] not in ("pending", "running"):
                return run
            assert time.monotonic() < deadline, run
            time.sleep(0.2)


@pytest.fixture(scope="module")
def tenant(runtime: RunningRuntime) -> Tenant:
    return Tenant(runtime, "e2e-workflow-runs")


def start(*variables: dict[str, Any]) -> dict[str, Any]:
    return {"id": "start", "type": "start", "config": {"variables": list(variables)}}


def end(**outputs: list[str]) -> dict[str, Any]:
    return {"id": "end", "type": "end", "config": {"outputs": [
        {"variable": name, "value_selector": selector} for name, selector in outputs.items()]}}


def code(node_id: str, source: str, outputs: dict[str, str], variables: dict[str, list[str]] | None = None,
         **node: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "code", **node, "config": {
        "code": source, "outputs": {name: {"type": kind} for name, kind in outputs.items()},
        "variables": [{"variable": name, "value_selector": selector} for name, selector in (variables or {}).items()]}}


def test_a_run_that_outlives_the_sync_bound_answers_202_and_finishes(tenant: Tenant) -> None:
    workflow = tenant.published("slow", [
        start({"variable": "seconds", "type": "number", "required": True}),
        code("sleep", "import time\ndef main(seconds):\n    time.sleep(seconds)\n    return {'slept': seconds}\n",
             {"slept": "number"}, variables={"seconds": ["start", "seconds"]}),
        end(slept=["sleep", "slept"])], [("start", "sleep"), ("sleep", "end")])
    began = time.monotonic()
    answer = tenant.run(workflow, 202, inputs={"seconds": SYNC_WAIT_S + 2}, mode="sync")
    assert time.monotonic() - began >= SYNC_WAIT_S
    run = answer.json()["data"]
    assert run["status"] in ("pending", "running")
    assert answer.headers["Location"] == f"/api/v1/workflow-runs/{run['id']}"
    finished = tenant.wait(run["id"])
    assert finished["status"] == "succeeded", finished
    assert finished["outputs"] == {"slept": SYNC_WAIT_S + 2}
    assert finished["transitions"] > 0 and finished["elapsed_ms"] >= (SYNC_WAIT_S + 2) * 1000
    assert [node["node_id"] for node in finished["nodes"]] == ["start", "sleep", "end"]
    # async answers at once; a quick run answers 200 in sync mode.
    quick = tenant.run(workflow, 202, inputs={"seconds": 0}, mode="async")
    assert quick.json()["data"]["status"] in ("pending", "running", "succeeded")
    assert tenant.wait(quick.json()["data"]["id"])["outputs"] == {"slept": 0}
    assert tenant.run(workflow, 200, inputs={"seconds": 0}).json()["data"]["status"] == "succeeded"


def test_cancel_mid_run_ends_the_run_and_its_running_node(tenant: Tenant) -> None:
    workflow = tenant.published("cancel me", [
        start(), code("sleep", "import time\ndef main():\n    time.sleep(8)\n    return {'done': True}\n",
                      {"done": "boolean"}),
        end(done=["sleep", "done"])], [("start", "sleep"), ("sleep", "end")])
    run = tenant.run(workflow, 202, mode="async").json()["data"]
    deadline = time.monotonic() + 30
    while True:  # until the code node is running in its branch
        nodes = tenant.call("GET", f"/api/v1/workflow-runs/{run['id']}", 200).json()["data"]["nodes"]
        if any(node["node_id"] == "sleep" for node in nodes):
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cancelled = tenant.call("POST", f"/api/v1/workflow-runs/{run['id']}/cancel", 200).json()["data"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"]["code"] == "workflow_run_cancelled"
    assert {node["node_id"]: node["status"] for node in cancelled["nodes"]}["sleep"] == "cancelled"
    again = tenant.call("POST", f"/api/v1/workflow-runs/{run['id']}/cancel", 409).json()
    assert again["code"] == "workflow_run_finished"
    # The node's late result changes nothing.
    time.sleep(9)
    later = tenant.call("GET", f"/api/v1/workflow-runs/{run['id']}", 200).json()["data"]
    assert later["status"] == "cancelled" and later["outputs"] is None
    assert {node["node_id"]: node["status"] for node in later["nodes"]} == {"start": "succeeded",
                                                                           "sleep": "cancelled"}
    listed = tenant.call("GET", f"/api/v1/workflows/{workflow}/runs?status=cancelled", 200).json()
    assert [item["id"] for item in listed["data"]] == [run["id"]]


def test_large_outputs_pass_by_reference(tenant: Tenant) -> None:
    size = 300_000
    workflow = tenant.published("large", [
        start(), code("big", f"def main():\n    return {{'text': 'x' * {size}}}\n", {"text": "string"}),
        {"id": "measure", "type": "template", "config": {
            "template": "{{ text | length }}", "variables": [{"variable": "text", "value_selector": ["big", "text"]}]}},
        end(length=["measure", "output"], text=["big", "text"])],
        [("start", "big"), ("big", "measure"), ("measure", "end")])
    run = tenant.run(workflow, 200).json()["data"]
    assert run["status"] == "succeeded", run
    assert run["outputs"]["length"] == str(size)
    assert len(run["outputs"]["text"]) == size
    big = next(node for node in run["nodes"] if node["node_id"] == "big")
    assert len(big["outputs"]["text"]) == size


def test_retry_then_success_failure_branch_and_default_value(tenant: Tenant, target: Flaky) -> None:
    workflow = tenant.published("resilient", [
        start(),
        {"id": "flaky", "type": "http_request", "retry": {"max_attempts": 3, "interval_ms": 100},
         "config": {"url": f"{target.origin}/flaky/one"}},
        {"id": "down", "type": "http_request", "error_strategy": "fail_branch",
         "config": {"url": f"{target.origin}/down"}},
        {"id": "fallback", "type": "template", "config": {"template": "fell back: {{ error }}", "variables": [
            {"variable": "error", "value_selector": ["down", "error_type"]}]}},
        {"id": "unused", "type": "template", "config": {"template": "never", "variables": []}},
        {"id": "defaulted", "type": "http_request", "error_strategy": "default_value",
         "default_value": {"body": "the default", "status_code": 0, "headers": {}},
         "config": {"url": f"{target.origin}/down"}},
        end(flaky=["flaky", "status_code"], fallback=["fallback", "output"], defaulted=["defaulted", "body"])],
        [("start", "flaky"), ("flaky", "down"), ("down", "fail-branch", "fallback"), ("down", "unused"),
         ("fallback", "defaulted"), ("defaulted", "end")])
    run = tenant.run(workflow, 200).json()["data"]
    assert run["status"] == "succeeded", run
    assert run["outputs"]["flaky"] == 200
    assert run["outputs"]["fallback"].startswith("fell back: ")
    assert run["outputs"]["defaulted"] == "the default"
    nodes = {node["node_id"]: node for node in run["nodes"]}
    assert nodes["flaky"]["attempts"] == 3 and target.calls["/flaky/one"] == 3
    assert nodes["down"]["handle"] == "fail-branch" and nodes["down"]["error"] is not None
    assert nodes["unused"]["status"] == "skipped"
    assert nodes["defaulted"]["error"] is not None and nodes["defaulted"]["status"] == "succeeded"


@pytest.mark.parametrize(("source", "limits", "code_error"), [
    ("def main():\n    while True:\n        pass\n", {"timeout_s": 2}, "code_timeout"),
    ("def main():\n    hog = bytearray(2 * 1024 ** 3)\n    return {'out': len(hog)}\n", {}, "code_memory_exceeded"),
    ("def main():\n    return {'out': 'x' * (20 * 1024 * 1024)}\n", {}, "code_output_too_large"),
], ids=["infinite-loop", "memory-hog", "huge-output"])
def test_code_limits_fail_the_run_naming_the_node(tenant: Tenant, source: str, limits: dict[str, Any],
                                                  code_error: str) -> None:
    workflow = tenant.published(f"limits {code_error}", [
        start(), code("greedy", source, {"out": "string"}, **limits), end(out=["greedy", "out"])],
        [("start", "greedy"), ("greedy", "end")])
    run = tenant.run(workflow, 200).json()["data"]
    assert run["status"] == "failed", run
    assert run["error"]["node_id"] == "greedy"
    assert run["error"]["code"] == code_error, run["error"]


def test_inputs_tenants_and_bound_keys(runtime: RunningRuntime, tenant: Tenant) -> None:
    workflow = tenant.published("guarded", [
        start({"variable": "name", "type": "string", "required": True, "max_length": 5}),
        end(name=["start", "name"])], [("start", "end")])
    other_workflow = tenant.published("other", [start(), end()], [("start", "end")])
    invalid = tenant.run(workflow, 422, inputs={"name": "far too long"}).json()
    assert invalid["details"]["fields"][0]["field"] == "inputs.name"
    assert tenant.run(workflow, 422, inputs={}).json()["details"]["fields"][0]["type"] == "missing"
    run = tenant.run(workflow, 200, inputs={"name": "Ada"}).json()["data"]
    assert run["outputs"] == {"name": "Ada"}
    # Another tenant: 404 everywhere.
    stranger = Tenant(runtime, "e2e-workflow-runs-stranger")
    stranger.call("GET", f"/api/v1/workflow-runs/{run['id']}", 404)
    stranger.call("POST", f"/api/v1/workflow-runs/{run['id']}/cancel", 404)
    stranger.call("GET", f"/api/v1/workflows/{workflow}/runs", 404)
    stranger.call("POST", f"/api/v1/workflows/{workflow}/runs", 404, json={"inputs": {"name": "Eve"}})
    tenant.call("GET", "/api/v1/workflow-runs/not-a-run", 404)
    # A key bound to one workflow runs that one, and reads only its runs.
    key = tenant.call("POST", "/api/v1/api-keys", 201, json={
        "name": "guarded app", "resource_type": "workflow", "resource_id": other_workflow}).json()["data"]
    bound = {"Authorization": f"Bearer {key['token']}"}
    tenant.call("POST", f"/api/v1/workflows/{workflow}/runs", 403, headers=bound, json={"inputs": {"name": "x"}})
    tenant.call("GET", f"/api/v1/workflow-runs/{run['id']}", 404, headers=bound)
    tenant.call("POST", f"/api/v1/workflows/{other_workflow}/runs", 403, headers=bound, json={"version": "draft"})
    own = tenant.call("POST", f"/api/v1/workflows/{other_workflow}/runs", 200, headers=bound, json={}).json()
    assert own["data"]["status"] == "succeeded"
    # A key bound to an agent is an app key of that agent: it reaches no workflow, whatever its scopes.
    agent = tenant.call("POST", "/api/v1/agents", 201, json={"name": "not a workflow"}).json()["data"]
    agent_key = tenant.call("POST", "/api/v1/api-keys", 201, json={
        "name": "agent app", "resource_type": "agent", "resource_id": agent["id"],
        "scopes": ["workflow:run", "workflow:read", "agent:run"]}).json()["data"]
    agent_bound = {"Authorization": f"Bearer {agent_key['token']}"}
    tenant.call("POST", f"/api/v1/workflows/{other_workflow}/runs", 403, headers=agent_bound, json={})
    tenant.call("GET", f"/api/v1/workflow-runs/{own['data']['id']}", 404, headers=agent_bound)
    # And the workflow's key reaches no conversation or chat.
    tenant.call("POST", "/api/v1/chat", 403, headers=bound, json={"agent_id": agent["id"], "message": "hi"})


def test_log_carries_no_secrets(runtime: RunningRuntime) -> None:
    log = Path(runtime.log).read_text(errors="replace")
    assert "sk-" not in log


def test_an_iteration_records_each_childs_run(tenant: Tenant) -> None:
    workflow = tenant.published("shout each", [
        start({"variable": "words", "type": "array[string]", "required": True}),
        {"id": "each", "type": "iteration", "config": {
            "start_node_id": "each_start", "iterator_selector": ["start", "words"],
            "output_selector": ["shout", "output"], "is_parallel": True, "parallel_nums": 3}},
        {"id": "each_start", "type": "iteration_start", "parent_id": "each"},
        {"id": "shout", "type": "template", "parent_id": "each", "config": {
            "template": "{{ i }}:{{ w | upper }}", "variables": [
                {"variable": "w", "value_selector": ["each", "item"]},
                {"variable": "i", "value_selector": ["each", "index"]}]}},
        end(out=["each", "output"])],
        [("start", "each"), ("each_start", "shout"), ("each", "end")])
    run = tenant.run(workflow, 200, inputs={"words": ["a", "b", "c", "d"]}).json()["data"]
    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"out": ["0:A", "1:B", "2:C", "3:D"]}
    each = next(node for node in run["nodes"] if node["node_id"] == "each")
    shouts = [child for child in each["children"] if child["node_id"] == "shout"]
    assert [child["index"] for child in shouts] == [0, 1, 2, 3]
    assert [child["outputs"]["output"] for child in shouts] == ["0:A", "1:B", "2:C", "3:D"]
    assert all(child["status"] == "succeeded" for child in each["children"])


def test_a_long_list_runs_through_the_distributed_map_with_the_same_record(tenant: Tenant) -> None:
    # Over the inline bound (WORKFLOW_ITERATION_INLINE_ITEMS, 200): the interpreter's Distributed
    # Map runs it in batches of 50 (cheap children), docs/adr/0038-long-iterations-distributed-map.md.
    words = [f"w{i}" for i in range(450)]
    workflow = tenant.published("shout many", [
        start({"variable": "words", "type": "array[string]", "required": True}),
        {"id": "each", "type": "iteration", "config": {
            "start_node_id": "each_start", "iterator_selector": ["start", "words"],
            "output_selector": ["shout", "output"], "is_parallel": True, "parallel_nums": 4,
            "error_handle_mode": "remove-abnormal-output"}},
        {"id": "each_start", "type": "iteration_start", "parent_id": "each"},
        {"id": "shout", "type": "template", "parent_id": "each", "config": {
            "template": "{{ i }}:{{ w | upper }}{{ 1 // (i % 100) }}", "variables": [
                {"variable": "w", "value_selector": ["each", "item"]},
                {"variable": "i", "value_selector": ["each", "index"]}]}},
        end(out=["each", "output"])],
        [("start", "each"), ("each_start", "shout"), ("each", "end")])
    run = tenant.run(workflow, 202, inputs={"words": words}, mode="async").json()["data"]
    finished = tenant.wait(run["id"], timeout_s=120)
    assert finished["status"] == "succeeded", finished
    # Items 0, 100, 200, 300, 400 fail (a division by zero) and are left out; the rest in item order.
    expected = [f"{i}:W{i}{1 // (i % 100)}" for i in range(450) if i % 100]
    assert finished["outputs"] == {"out": expected}
    each = next(node for node in finished["nodes"] if node["node_id"] == "each")
    assert each["status"] == "succeeded" and each["error"] is None
    shouts = [child for child in each["children"] if child["node_id"] == "shout"]
    assert [child["index"] for child in shouts] == list(range(450))
    assert [child["status"] for child in shouts if child["index"] % 100 == 0] == ["failed"] * 5
    assert [node["node_id"] for node in finished["nodes"]] == ["start", "each", "end"]
    # The Map's 9 child executions are billed transitions of the run (3 each).
    assert finished["transitions"] >= 3 * 9
