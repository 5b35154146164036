"""Streamed workflow runs on the local runtime (Step Functions on moto, embedded PostgreSQL, the
in-process event stream), over HTTP with an SSE client (docs/adr/0035-workflow-run-streaming.md).

From a node's end to its ``node.finished`` reaching the streaming client: the engine stamps
``finished_at`` when the node settles (``shared/workflows/engine/runner.py``); the client notes
the wall clock when the event arrives (same machine, same clock). The difference covers the
append to the run's stream, the follower's read, the SSE frame through the gateway and the
client's parse. Two shapes:

- inline nodes: a chain of 20 template nodes (run fused in the step task), 10 streamed runs;
- a branch node: start -> llm -> end, the model a local OpenAI-protocol server answering at
  once (the LLM node runs in its own invocation of the Map), 30 streamed runs.

Both with the local default event stream (in-process) and with Redis Streams on a cluster-mode
Valkey server (what ElastiCache runs in AWS). Goal: p50 <= 50 ms. p50 and p95 are printed per
shape and over all nodes.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from benchmarks.local_latency import _percentile, _start_runtime
from tests.support.fake_openai import ChatScript, FakeOpenAI

CHAIN_NODES = 20
CHAIN_RUNS = 10
LLM_RUNS = 30
WARMUP_RUNS = 2


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _chain(templates: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start", "config": {"variables": [
        {"variable": "name", "type": "string", "required": True}]}}]
    previous, field = "start", "name"
    for index in range(templates):
        nodes.append({"id": f"t{index}", "type": "template", "config": {
            "template": "{{ text }}!", "variables": [{"variable": "text", "value_selector": [previous, field]}]}})
        previous, field = f"t{index}", "output"
    nodes.append({"id": "end", "type": "end", "config": {"outputs": [
        {"variable": "text", "value_selector": [previous, field]}]}})
    ids = [node["id"] for node in nodes]
    return {"nodes": nodes, "edges": [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]}


def _llm() -> dict[str, Any]:
    return {"nodes": [
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "name", "required": True}]}},
        {"id": "llm", "type": "llm", "config": {"prompt_template": [{"role": "user", "text": "{{#start.name#}}"}]}},
        {"id": "end", "type": "end", "config": {"outputs": [{"variable": "text", "value_selector": ["llm", "text"]}]}}],
        "edges": [{"source": "start", "target": "llm"}, {"source": "llm", "target": "end"}]}


class _Platform:
    def __init__(self, info: dict[str, Any], fake: FakeOpenAI) -> None:
        self.http = httpx.Client(base_url=info["url"], timeout=120)
        admin = {"Authorization": f"Bearer {info['admin_token']}"}
        tenant = self.http.post("/api/v1/tenants", json={"name": "bench-stream"}, headers=admin).json()["data"]
        self.headers = {"Authorization": f"Bearer {tenant['owner_token']}"}
        self.call("POST", "/api/v1/models", json={
            "name": "scripted", "protocol": "openai", "provider_model": "gpt-scripted", "base_url": fake.base_url,
            "api_key": "sk-bench-" + "x" * 24, "test": False})
        self.call("PUT", "/api/v1/models/defaults", json={"chat_model": "scripted"})

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=self.headers, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()["data"]

    def published(self, name: str, document: dict[str, Any]) -> str:
        workflow = self.call("POST", "/api/v1/workflows", json={"name": name, "document": document})
        self.call("POST", f"/api/v1/workflows/{workflow['id']}/publish", json={})
        return str(workflow["id"])

    def stream(self, workflow: str, name: str) -> dict[str, float]:
        """One streamed run: each node's end to its node.finished arriving, in ms, by node id."""
        lags: dict[str, float] = {}
        body = {"inputs": {"name": name}, "mode": "stream"}
        with connect_sse(self.http, "POST", f"/api/v1/workflows/{workflow}/runs", json=body,
                         headers=self.headers) as source:
            for event in source.iter_sse():
                arrived = time.time()
                if event.event == "node.finished":
                    data = event.json()
                    lags[data["node_id"]] = (arrived - datetime.fromisoformat(data["finished_at"]).timestamp()) * 1000
                elif event.event == "done":
                    if event.json()["status"] != "succeeded":
                        raise RuntimeError(f"a benchmark run ended {event.json()['status']}")
                    break
        return lags


def _report(label: str, samples: list[float]) -> None:
    _out(f"{label}: p50 {statistics.median(samples):.1f} ms  p95 {_percentile(samples, 95):.1f} ms  "
         f"max {max(samples):.1f} ms  ({len(samples)} nodes)")


def _measure(label: str, fake: FakeOpenAI, state_dir: Path, **env: str) -> None:
    proc, info = _start_runtime(state_dir, STRATUS_EGRESS_ALLOW="127.0.0.1", **env)
    try:
        platform = _Platform(info, fake)
        chain = platform.published("stream chain", _chain(CHAIN_NODES))
        llm = platform.published("stream llm", _llm())
        inline: list[float] = []
        for index in range(WARMUP_RUNS + CHAIN_RUNS):
            lags = platform.stream(chain, f"c{index}")
            if index >= WARMUP_RUNS:  # the first runs pay the functions' cold starts
                inline.extend(lags.values())
        branch: list[float] = []
        for index in range(WARMUP_RUNS + LLM_RUNS):
            fake.enqueue(ChatScript(text=["Hello", " there"], usage=(5, 2)))
            lags = platform.stream(llm, f"l{index}")
            if index >= WARMUP_RUNS:
                branch.append(lags["llm"])
        _out(f"-- the run's event stream: {label}")
        _report(f"inline nodes ({CHAIN_NODES + 2}-node chain, {CHAIN_RUNS} runs)", inline)
        _report(f"branch node (llm in its own invocation, {LLM_RUNS} runs)", branch)
        _report("all nodes (goal p50 <= 50 ms)", inline + branch)
    finally:
        proc.terminate()
        proc.wait(30)


def run() -> None:
    from tests.support.redis_server import start_cluster_redis

    _out("== Workflow run streaming: node's end -> node.finished at the SSE client (local runtime) ==")
    with FakeOpenAI() as fake, tempfile.TemporaryDirectory(prefix="stratus-bench-stream-") as tmp:
        _measure("the in-process implementation (the local default)", fake, Path(tmp) / "memory")
        url, stop = start_cluster_redis(Path(tmp) / "valkey")
        try:
            # Redis Streams (XADD, XREAD BLOCK) on a cluster-mode Valkey, as on ElastiCache Serverless.
            _measure("Valkey in cluster mode (as ElastiCache)", fake, Path(tmp) / "valkey-state", REDIS_URL=url)
        finally:
            stop()
