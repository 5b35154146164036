"""A chatflow agent's turn against a quick-answer agent's, on the local runtime (``python -m
infra.local`` as a subprocess, real HTTP, an SSE client), with the scripted OpenAI-compatible
model server of the chat benchmark running in this process (docs/adr/0037-chatflows.md).

``chatflow-overhead``: the same question to two agents on the same model, turns interleaved
(after warm-up turns of each): a quick-answer agent without knowledge (the prompt, then one
streamed completion) and a chatflow agent whose chatflow is start → llm → answer
(``{{#llm.text#}}``, so its first words are the model's). For each turn the client takes t0
before sending ``POST /api/v1/chat`` and t1 when the first ``message.delta`` arrives; the model
server measures its own time to first token (from the request, read in full, to the first chunk
carrying text) and when the request reached it. Figures:

- first-delta overhead = (t1 - t0) - model TTFT: everything the platform adds before the user
  sees text. Goal: the chatflow's within 20 ms of the quick-answer agent's (same run).
- dispatch = request reached the model - t0: what happens before the model is called.
- the same chatflow run through the runs API (``POST /api/v1/workflows/{id}/runs``, async: the
  interpreter's state machine on moto), dispatch measured the same way: what starting the state
  machine and following the run's event stream would put before a chat's first word.
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

from benchmarks.chat import TimedFakeOpenAI, _percentile, _start_runtime
from tests.support.fake_openai import Exchange, RecordedRequest

WARMUP_TURNS = 10
MEASURED_TURNS = 100
STATE_MACHINE_RUNS = 20


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _ArrivalFake(TimedFakeOpenAI):
    """The chat benchmark's model server, also noting when each question's request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self._arrived: dict[str, float] = {}

    def respond(self, exchange: Exchange, request: RecordedRequest) -> None:
        from benchmarks.chat import _last_user_message

        body = request.body if isinstance(request.body, dict) else {}
        with self._lock:
            self._arrived[_last_user_message(body)] = time.perf_counter()
        super().respond(exchange, request)

    def take_arrival(self, question: str) -> float | None:
        with self._lock:
            return self._arrived.pop(question, None)


def _stats(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    return (f"p50 {statistics.median(samples):6.1f} ms  p95 {_percentile(samples, 95):6.1f} ms  "
            f"mean {statistics.fmean(samples):6.1f} ms  (n={len(samples)})")


class _Bench:
    def __init__(self, url: str, admin_token: str, fake: _ArrivalFake) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.fake = fake
        tenant = self._post("/api/v1/tenants", {"name": "bench-chatflow"},
                            {"Authorization": f"Bearer {admin_token}"})
        self.headers = {"Authorization": f"Bearer {tenant['owner_token']}"}
        self._post("/api/v1/models", {"name": "bench", "protocol": "openai", "provider_model": "gpt-bench",
                                      "base_url": fake.base_url, "api_key": "sk-bench-" + "x" * 24, "test": False})
        self._put("/api/v1/models/defaults", {"chat_model": "bench"})
        quick = self._post("/api/v1/agents", {"name": "quick", "config": {
            "mode": "quick-answer", "model": {"name": "bench"}, "memory": {"turns": 0}}})
        self._post(f"/api/v1/agents/{quick['id']}/publish", {})
        workflow = self._post("/api/v1/workflows", {"name": "chatflow", "document": {
            "mode": "chatflow", "nodes": [
                {"id": "start", "type": "start"},
                {"id": "llm", "type": "llm", "config": {"model": {"name": "bench"}, "prompt_template": [
                    {"role": "system", "text": "You are a helpful assistant."},
                    {"role": "user", "text": "{{#sys.query#}}"}]}},
                {"id": "answer", "type": "answer", "config": {"answer": "{{#llm.text#}}"}}],
            "edges": [{"source": "start", "target": "llm"}, {"source": "llm", "target": "answer"}]}})
        self._post(f"/api/v1/workflows/{workflow['id']}/publish", {})
        flow = self._post("/api/v1/agents", {"name": "flow", "config": {
            "mode": "chatflow", "chatflow": {"workflow_id": workflow["id"]}}})
        self._post(f"/api/v1/agents/{flow['id']}/publish", {})
        self.agents = {"quick-answer": quick["id"], "chatflow": flow["id"]}
        self.workflow_id = workflow["id"]

    def _post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        response = self.http.post(path, json=body, headers=headers or self.headers)
        if response.status_code not in (200, 201, 202):
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:500]}")
        return response.json()["data"]

    def _put(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.put(path, json=body, headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:500]}")
        return response.json()["data"]

    def turn(self, mode: str) -> tuple[float, float, float]:
        """(first-delta overhead, dispatch, model TTFT) of one turn, in ms."""
        from httpx_sse import connect_sse

        question = f"question {uuid.uuid4().hex}?"
        first: float | None = None
        said: list[str] = []
        t0 = time.perf_counter()
        with connect_sse(self.http, "POST", "/api/v1/chat", headers=self.headers,
                         json={"agent_id": self.agents[mode], "message": question, "user": "bench"}) as source:
            if source.response.status_code != 200:
                raise RuntimeError(f"chat: {source.response.status_code} {source.response.read()[:300]!r}")
            for event in source.iter_sse():
                if event.event == "message.delta":
                    if first is None:
                        first = time.perf_counter()
                    said.append(event.json()["text"])
                elif event.event == "error":
                    raise RuntimeError(f"{mode} turn failed: {event.data[:300]}")
        ttft = self.fake.take_ttft_ms(question)
        arrived = self.fake.take_arrival(question)
        if first is None or ttft is None or arrived is None or not said:
            raise RuntimeError(f"{mode} turn: no delta or no model timing")
        return (first - t0) * 1000 - ttft, (arrived - t0) * 1000, ttft

    def state_machine_dispatch(self) -> float:
        """The same chatflow through the runs API (the interpreter on moto): from POST to the
        model's request, in ms."""
        question = f"question {uuid.uuid4().hex}?"
        t0 = time.perf_counter()
        run = self._post(f"/api/v1/workflows/{self.workflow_id}/runs", {"mode": "async", "query": question})
        deadline = time.monotonic() + 60
        while (arrived := self.fake.take_arrival(question)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run['id']}: the model was never called")
            time.sleep(0.001)
        self.fake.take_ttft_ms(question)
        while self.http.get(f"/api/v1/workflow-runs/{run['id']}", headers=self.headers).json()["data"][
                "status"] in ("pending", "running"):
            time.sleep(0.02)
        return (arrived - t0) * 1000


def run_overhead() -> None:
    _out("== chatflow-overhead: a chatflow agent (start -> llm -> answer) vs a quick-answer agent, same model ==")
    fake = _ArrivalFake().start()
    with tempfile.TemporaryDirectory(prefix="stratus-bench-chatflow-") as tmp:
        state, log = Path(tmp) / "state", Path(tmp) / "runtime.log"
        proc, info = _start_runtime(state, log)
        try:
            bench = _Bench(info["url"], info["admin_token"], fake)
            for _ in range(WARMUP_TURNS):
                bench.turn("quick-answer")
                bench.turn("chatflow")
            samples: dict[str, list[tuple[float, float, float]]] = {"quick-answer": [], "chatflow": []}
            for _ in range(MEASURED_TURNS):
                for mode in ("quick-answer", "chatflow"):
                    samples[mode].append(bench.turn(mode))
            bench.state_machine_dispatch()  # warm-up: the step and branch functions' first invocations
            machine = [bench.state_machine_dispatch() for _ in range(STATE_MACHINE_RUNS)]
        finally:
            import signal

            proc.send_signal(signal.SIGINT)
            proc.wait(60)
            fake.stop()
    _out(f"{MEASURED_TURNS} turns each, interleaved, after {WARMUP_TURNS} warm-up turns each")
    for mode, rows in samples.items():
        _out(f"  {mode:13s} first-delta overhead {_stats([row[0] for row in rows])}")
        _out(f"  {'':13s} dispatch (POST -> model request) {_stats([row[1] for row in rows])}")
    quick = statistics.median(row[0] for row in samples["quick-answer"])
    flow = statistics.median(row[0] for row in samples["chatflow"])
    _out(f"  chatflow - quick-answer, first-delta overhead p50: {flow - quick:+.1f} ms (goal: within 20 ms)")
    _out(f"  the same chatflow through the runs API (state machine on moto), dispatch {_stats(machine)}")
