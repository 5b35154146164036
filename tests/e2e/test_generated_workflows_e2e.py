"""Generated workflow graphs through the whole local runtime over HTTP (a few bounded,
derandomized examples; tests/unit/workflows/test_generated_graphs.py runs many more against the
interpreter's loop): saving, publishing and running each answers a located 422 or a run that
reaches a final status; never a 5xx, never a run left going."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import RunningRuntime, start_runtime
from tests.unit.workflows.test_generated_graphs import Generated, documents

_names = itertools.count()


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    running: RunningRuntime = start_runtime(tmp_path_factory.mktemp("e2e-generated") / "state")
    http = httpx.Client(base_url=running.url, timeout=60)
    created = http.post("/api/v1/tenants", json={"name": "generated"},
                        headers={"Authorization": f"Bearer {running.admin_token}"})
    assert created.status_code == 201, created.text
    yield http, {"Authorization": f"Bearer {created.json()['data']['owner_token']}"}
    http.close()
    running.stop()


def _located(body: dict[str, Any], ids: set[str]) -> None:
    error = body
    assert error["message"] and ": :" not in error["message"] and ", :" not in error["message"], body
    problems = (error.get("details") or {}).get("problems")
    if problems is None:
        # A request-shape refusal (before the document is read as a workflow): the message says where.
        assert "document" in error["message"] or (error.get("details") or {}).get("fields"), body
        return
    for problem in problems:
        assert problem["node_id"] in ids or (problem["node_id"] is None and problem["field"]), problem


@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(generated=documents(), n=st.integers(min_value=-2, max_value=2))
def test_a_generated_workflow_is_refused_located_or_runs_to_a_final_status(
        tenant: tuple[httpx.Client, dict[str, str]], generated: Generated, n: int) -> None:
    http, headers = tenant
    ids = {str(node.get("id")) for node in generated.raw["nodes"]}
    saved = http.post("/api/v1/workflows", headers=headers,
                      json={"name": f"generated-{next(_names)}", "document": generated.raw})
    assert saved.status_code in (201, 422), saved.text
    if saved.status_code == 422:
        assert generated.mutation is not None, saved.text
        _located(saved.json(), ids)
        event("refused on save")
        return
    workflow_id = saved.json()["data"]["id"]
    published = http.post(f"/api/v1/workflows/{workflow_id}/publish", headers=headers, json={})
    assert published.status_code in (201, 422), published.text
    if published.status_code == 422:
        assert generated.mutation is not None, published.text
        _located(published.json(), ids)
        event("refused on publish")
        return
    assert generated.mutation is None
    started = http.post(f"/api/v1/workflows/{workflow_id}/runs", headers=headers, json={"inputs": {"n": n}})
    assert started.status_code in (200, 202), started.text
    run = started.json()["data"]
    deadline = time.monotonic() + 60
    while run["status"] in ("pending", "running"):
        assert time.monotonic() < deadline, f"the run did not end: {run}"
        time.sleep(0.2)
        polled = http.get(f"/api/v1/workflow-runs/{run['id']}", headers=headers)
        assert polled.status_code == 200, polled.text
        run = polled.json()["data"]
    assert run["status"] in ("succeeded", "failed"), run
    event(f"run {run['status']}")
    if run["status"] == "failed":
        assert run["error"]["node_id"] in ids, run["error"]
