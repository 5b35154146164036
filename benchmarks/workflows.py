"""Workflow runs on the local runtime (Step Functions on moto, embedded PostgreSQL), over HTTP.

- Engine overhead per node: a 20-node linear workflow of template nodes; the run's own elapsed
  time, minus moto's cost per state transition (measured on a chain of Pass states on the same
  moto, in the same runtime) times the run's transitions, divided by the nodes. Goal: <= 15 ms.
  The state transitions per run are reported too (they are what AWS bills).
- Engine overhead per item of a long iteration (docs/adr/0038): 1,000 items through the
  interpreter's Distributed Map (over the 200-item inline bound; cheap children, so 50 items per
  child execution), and 200 items in the node's own invocation for comparison; each item runs
  an iteration-start and a template child. The run's elapsed time minus moto's per-state cost
  times its transitions (the Map's child executions' included), divided by the items.
- A sync run of start -> template -> end: p50/p95 end to end over HTTP.
- 100 concurrent async runs: all must succeed; runs/s.
"""

from __future__ import annotations

import itertools
import json
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.local_latency import _percentile, _start_runtime

CHAIN_NODES = 20
PASS_STATES = 20
SYNC_RUNS = 40
CONCURRENT_RUNS = 100
LONG_ITEMS = 1_000
INLINE_ITEMS = 200


def _document(templates: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start", "config": {"variables": [
        {"variable": "name", "type": "string", "required": True}]}}]
    previous = "start"
    for index in range(templates):
        node_id = f"t{index}"
        nodes.append({"id": node_id, "type": "template", "config": {
            "template": "{{ text }}!", "variables": [
                {"variable": "text", "value_selector": [previous, "name" if previous == "start" else "output"]}]}})
        previous = node_id
    field = "name" if previous == "start" else "output"
    nodes.append({"id": "end", "type": "end", "config": {"outputs": [
        {"variable": "text", "value_selector": [previous, field]}]}})
    ids = [node["id"] for node in nodes]
    return {"nodes": nodes, "edges": [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]}


class _Platform:
    def __init__(self, info: dict[str, Any]) -> None:
        self.url = info["url"]
        self.http = httpx.Client(base_url=self.url, timeout=60)
        admin = {"Authorization": f"Bearer {info['admin_token']}"}
        tenant = self.http.post("/api/v1/tenants", json={"name": "bench-workflows"}, headers=admin).json()["data"]
        self.headers = {"Authorization": f"Bearer {tenant['owner_token']}"}

    def call(self, method: str, path: str, expect: tuple[int, ...], **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=self.headers, **kwargs)
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()["data"]

    def published(self, name: str, document: dict[str, Any]) -> str:
        workflow = self.call("POST", "/api/v1/workflows", (201,), json={"name": name, "document": document})
        self.call("POST", f"/api/v1/workflows/{workflow['id']}/publish", (201,), json={})
        return str(workflow["id"])

    def finished(self, run_id: str, timeout_s: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.call("GET", f"/api/v1/workflow-runs/{run_id}", (200,))
            if run["status"] not in ("pending", "running"):
                return dict(run)
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run_id} still {run['status']} after {timeout_s} s")
            time.sleep(0.05)


def _moto_cost_per_state(state_dir: Path) -> float:
    """Milliseconds moto's interpreter spends per Pass state, from its own execution times."""
    import boto3

    port = (state_dir / "aws-port").read_text().strip()
    sfn = boto3.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")  # noqa: S106 - moto's dummy keys
    states: dict[str, Any] = {}
    for index in range(PASS_STATES):
        states[f"P{index}"] = {"Type": "Pass", **({"Next": f"P{index + 1}"} if index + 1 < PASS_STATES
                                                 else {"End": True})}
    machine = sfn.create_state_machine(name=f"bench-pass-{int(time.time())}", roleArn=(
        "arn:aws:iam::123456789012:role/bench"), definition=json.dumps({"StartAt": "P0", "States": states}))
    samples = []
    for index in range(10):
        arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=f"p{index}")["executionArn"]
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            time.sleep(0.01)
        started: datetime = described["startDate"]
        stopped: datetime = described["stopDate"]
        samples.append((stopped - started).total_seconds() * 1000 / PASS_STATES)
    return statistics.median(samples)


def _iteration_document() -> dict[str, Any]:
    nodes = [
        {"id": "start", "type": "start", "config": {"variables": [
            {"variable": "names", "type": "array[string]", "required": True}]}},
        {"id": "each", "type": "iteration", "config": {
            "start_node_id": "each_start", "iterator_selector": ["start", "names"],
            "output_selector": ["hello", "output"]}},
        {"id": "each_start", "type": "iteration_start", "parent_id": "each"},
        {"id": "hello", "type": "template", "parent_id": "each", "config": {
            "template": "Hello {{ n }}", "variables": [{"variable": "n", "value_selector": ["each", "item"]}]}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "all", "value_selector": ["each", "output"]}]}},
    ]
    edges = [("start", "each"), ("each_start", "hello"), ("each", "end")]
    return {"nodes": nodes, "edges": [{"source": a, "target": b} for a, b in edges]}


def _iteration_overhead(platform: _Platform, per_state: float) -> None:
    workflow = platform.published("long iteration", _iteration_document())
    for items, path in ((LONG_ITEMS, "Distributed Map"), (INLINE_ITEMS, "in its node's invocation")):
        names = [f"n{index}" for index in range(items)]
        runs = []
        for _ in range(3):
            created = platform.call("POST", f"/api/v1/workflows/{workflow}/runs", (202,),
                                    json={"inputs": {"names": names}, "mode": "async"})
            runs.append(platform.finished(created["id"]))
        for run in runs:
            assert run["status"] == "succeeded" and len(run["outputs"]["all"]) == items, run["status"]
        elapsed = statistics.median(run["elapsed_ms"] for run in runs)
        transitions = statistics.median(run["transitions"] for run in runs)
        overhead = (elapsed - transitions * per_state) / items
        print(f"{items}-item iteration ({path}): elapsed {elapsed:.0f} ms, {transitions:.0f} state transitions, "
              f"engine overhead {overhead:.2f} ms/item")


def _overhead(platform: _Platform, state_dir: Path) -> float:
    per_state = _moto_cost_per_state(state_dir)
    workflow = platform.published("chain", _document(CHAIN_NODES))
    runs = []
    for _ in range(5):
        created = platform.call("POST", f"/api/v1/workflows/{workflow}/runs", (202,),
                                json={"inputs": {"name": "bench"}, "mode": "async"})
        runs.append(platform.finished(created["id"]))
    for run in runs:
        assert run["status"] == "succeeded", run
    elapsed = statistics.median(run["elapsed_ms"] for run in runs)
    transitions = statistics.median(run["transitions"] for run in runs)
    nodes = CHAIN_NODES + 2
    overhead = (elapsed - transitions * per_state) / nodes
    print(f"moto per Pass state: {per_state:.2f} ms ({PASS_STATES}-state chain, median of 10)")
    print(f"{nodes}-node linear run: elapsed {elapsed:.0f} ms, {transitions:.0f} state transitions, "
          f"engine overhead {overhead:.2f} ms/node (goal <= 15 ms)")
    return per_state


def _sync_latency(platform: _Platform) -> None:
    workflow = platform.published("hello", _document(1))
    samples = []
    for index in range(SYNC_RUNS + 3):
        started = time.perf_counter()
        run = platform.call("POST", f"/api/v1/workflows/{workflow}/runs", (200,),
                            json={"inputs": {"name": f"n{index}"}, "mode": "sync"})
        if index >= 3:  # the first runs pay the functions' cold starts
            samples.append((time.perf_counter() - started) * 1000)
        assert run["status"] == "succeeded" and run["outputs"] == {"text": f"n{index}!"}, run
    print(f"sync start->template->end over HTTP: p50 {statistics.median(samples):.0f} ms  "
          f"p95 {_percentile(samples, 95):.0f} ms  ({SYNC_RUNS} runs)")


def _concurrency(platform: _Platform) -> None:
    workflow = platform.published("fan", _document(3))
    ids: list[str] = []
    lock = threading.Lock()

    def start(index: int) -> None:
        with httpx.Client(base_url=platform.url, timeout=60) as client:
            response = client.post(f"/api/v1/workflows/{workflow}/runs", headers=platform.headers,
                                   json={"inputs": {"name": f"c{index}"}, "mode": "async"})
            assert response.status_code == 202, response.text
            with lock:
                ids.append(response.json()["data"]["id"])

    began = time.perf_counter()
    threads = [threading.Thread(target=start, args=(index,)) for index in range(CONCURRENT_RUNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = [platform.finished(run_id, timeout_s=600) for run_id in ids]
    took = time.perf_counter() - began
    succeeded = sum(run["status"] == "succeeded" for run in runs)
    print(f"{CONCURRENT_RUNS} concurrent async runs (5 nodes each): {succeeded}/{len(runs)} succeeded in "
          f"{took:.1f} s, {len(runs) / took:.1f} runs/s")
    if succeeded != CONCURRENT_RUNS:
        raise RuntimeError("not every concurrent run succeeded")


def run() -> None:
    print("== Workflow runs (local runtime: Step Functions on moto, embedded PostgreSQL) ==")
    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as tmp:
        state_dir = Path(tmp)
        proc, info = _start_runtime(state_dir)
        try:
            platform = _Platform(info)
            per_state = _overhead(platform, state_dir)
            _iteration_overhead(platform, per_state)
            _sync_latency(platform)
            _concurrency(platform)
        finally:
            proc.terminate()
            proc.wait(30)
