"""``agent-loop``: the smart-reasoning loop's per-step platform overhead, on the local runtime
(``python -m infra.local`` as a subprocess, real HTTP, an SSE client), with the scripted
OpenAI-compatible model server of the tests running in this process (docs/adr/0040).

Each turn is a 5-step run: four steps in which the model (native function calling, streamed
tool-call fragments) calls the built-in ``current_time`` tool, then the answer. Every step
records the time spent in the model call (``model_ms``: from the gateway's request to the end
of its stream, the provider's HTTP included) and in the tools (``tools_ms``: from handing the
calls to the executor's threads to the last result); the answer records its total
(``latency.total_ms``, from the request's admission to the final write). Figures per step:

- platform overhead = (total_ms - sum(model_ms) - sum(tools_ms)) / 5: what the loop itself adds
  (prompt building, events appended to the stream and sent, checkpoints and cancel checks,
  parsing fragments, the final write; the turn's admission and first event are spread over
  its five steps). Goal: <= 20 ms per step locally.
- client wall overhead = (client's POST -> ``done`` - sum(model_ms) - sum(tools_ms)) / 5: the
  same seen from the client (HTTP, the runtime's gateway, the SSE stream included).

The client, the model server and the runtime share this machine's cores.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from benchmarks.chat import _percentile, _start_runtime
from tests.support.fake_openai import ChatScript, FakeOpenAI, ToolCallScript

STEPS = 5
WARMUP_TURNS = 5
MEASURED_TURNS = 40


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _stats(samples: list[float]) -> str:
    return (f"p50 {statistics.median(samples):6.1f} ms  p95 {_percentile(samples, 95):6.1f} ms  "
            f"max {max(samples):6.1f} ms")


class _Bench:
    def __init__(self, url: str, admin_token: str, fake: FakeOpenAI) -> None:
        self.fake = fake
        self.http = httpx.Client(base_url=url, timeout=120)
        tenant = self.http.post("/api/v1/tenants", json={"name": "bench agent loop"},
                                headers={"Authorization": f"Bearer {admin_token}"}).json()["data"]
        self.http.headers["Authorization"] = f"Bearer {tenant['owner_token']}"
        self._post("/api/v1/models", {"name": "caller", "protocol": "openai", "provider_model": "gpt-bench",
                                      "base_url": fake.base_url, "api_key": "sk-bench-" + "x" * 24, "test": False,
                                      "capabilities": ["chat", "function_calling"]})
        agent = self._post("/api/v1/agents", {"name": "bench reasoner", "config": {
            "mode": "smart-reasoning", "model": {"name": "caller"}, "tools": ["current_time"],
            "max_iterations": STEPS}})
        self._post(f"/api/v1/agents/{agent['id']}/publish", {})
        self.agent_id = agent["id"]

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(path, json=body)
        if response.status_code != 201:
            raise RuntimeError(f"{path}: {response.status_code} {response.text}")
        return response.json()["data"]

    def turn(self) -> tuple[float, float, float, float]:
        """Per step, in ms: platform overhead, client wall overhead, model time, tool time."""
        import json

        call = ['{"timez', 'one": "UTC"}']
        self.fake.enqueue(*(ChatScript(text=[], tool_calls=[ToolCallScript("current_time", call)])
                            for _ in range(STEPS - 1)),
                          ChatScript(text=["It ", "is ", "now."]))
        t0 = time.perf_counter()
        complete: dict[str, Any] | None = None
        body = {"agent_id": self.agent_id, "message": f"What time is it? ({uuid.uuid4().hex[:6]})"}
        with self.http.stream("POST", "/api/v1/chat", json=body) as r:
            kind = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "message.complete":
                    complete = json.loads(line[6:])
                elif line.startswith("data: ") and kind == "done":
                    break
        wall_ms = (time.perf_counter() - t0) * 1000
        if complete is None or complete["status"] != "completed" or len(complete["steps"]) != STEPS:
            raise RuntimeError(f"unexpected turn: {complete}")
        model = sum(step["model_ms"] for step in complete["steps"])
        tools = sum(step["tools_ms"] for step in complete["steps"])
        outside = model + tools
        return ((complete["latency"]["total_ms"] - outside) / STEPS, (wall_ms - outside) / STEPS, model / STEPS,
                tools / (STEPS - 1))


def run() -> None:
    _out(f"== agent-loop: per-step platform overhead of a {STEPS}-step smart-reasoning turn "
         "(model and tool time excluded) ==")
    fake = FakeOpenAI().start()
    with tempfile.TemporaryDirectory(prefix="stratus-bench-agent-loop-") as tmp:
        state, log = Path(tmp) / "state", Path(tmp) / "runtime.log"
        proc, info = _start_runtime(state, log)
        try:
            bench = _Bench(info["url"], info["admin_token"], fake)
            for _ in range(WARMUP_TURNS):
                bench.turn()
            samples = [bench.turn() for _ in range(MEASURED_TURNS)]
        finally:
            import signal

            proc.send_signal(signal.SIGINT)
            proc.wait(60)
            fake.stop()
    _out(f"{MEASURED_TURNS} turns of {STEPS} steps (4 tool rounds + the answer) after {WARMUP_TURNS} warm-up turns")
    _out(f"  platform overhead per step     {_stats([s[0] for s in samples])}  (goal: <= 20 ms)")
    _out(f"  client wall overhead per step  {_stats([s[1] for s in samples])}")
    _out(f"  (excluded) model call per step {_stats([s[2] for s in samples])}")
    _out(f"  (excluded) tools per tool step {_stats([s[3] for s in samples])}")
