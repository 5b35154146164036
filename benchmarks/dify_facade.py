"""``dify-overhead``: what the Dify facade adds to a chat turn before the client sees text.

As ``openai-overhead`` (benchmarks/openai_facade.py), whose setup and native measure it reuses:
one local runtime, one published quick-answer agent without knowledge, the scripted model server
timing its own first token; pairs of turns of the same agent, their order alternating, through
``POST /api/v1/chat`` (t1: the first ``message.delta``) and ``POST /dify/v1/chat-messages`` with
``response_mode: streaming`` and an app key bound to the agent (t1: the first ``message`` event),
both read with the same raw SSE client. Each turn's overhead is (t1 - t0) - the model server's TTFT
for its question; the facade's added time is the Dify overhead minus the native one."""

from __future__ import annotations

import json
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.openai_facade import CHUNKS, MEASURED_PAIRS, WARMUP_PAIRS, _first_delta, _out, _stats


def _first_message(http: httpx.Client, headers: dict[str, str], question: str) -> float:
    """Milliseconds from sending the Dify chat message to its first ``message`` event (read to its end)."""
    from httpx_sse import connect_sse

    t0 = time.perf_counter()
    first: float | None = None
    ended = False
    with connect_sse(http, "POST", "/dify/v1/chat-messages", headers=headers,
                     json={"inputs": {}, "query": question, "user": "bench", "response_mode": "streaming"}) as source:
        if source.response.status_code != 200:
            raise RuntimeError(f"/dify: {source.response.status_code} {source.response.read()!r}")
        for event in source.iter_sse():
            if not event.data:  # event: ping
                continue
            data = json.loads(event.data)
            if data["event"] == "error":
                raise RuntimeError(f"/dify: {data}")
            if first is None and data["event"] == "message" and data["answer"]:
                first = (time.perf_counter() - t0) * 1000
            ended = data["event"] == "message_end"
    if first is None or not ended:
        raise RuntimeError("/dify: no message or no message_end")
    return first


def run() -> None:
    from benchmarks.chat import TimedFakeOpenAI, _start_runtime

    _out("== Dify facade: first message through /dify/v1/chat-messages vs first message.delta through "
         "/api/v1/chat (same agent, same run) ==")
    fake = TimedFakeOpenAI().start()
    fake.chunks, fake.chunk_delay_s = CHUNKS, 0.0
    tmp = tempfile.TemporaryDirectory(prefix="stratus-bench-dify-")
    proc, info = _start_runtime(Path(tmp.name) / "state", Path(tmp.name) / "runtime.log")
    try:
        with httpx.Client(base_url=info["url"], timeout=120) as http:
            def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
                response = http.post(path, json=body, headers=headers)
                assert response.status_code == 201, f"{path}: {response.status_code} {response.text}"
                return response.json()["data"]

            admin = {"Authorization": f"Bearer {info['admin_token']}"}
            tenant = post("/api/v1/tenants", {"name": "bench-dify"}, admin)
            headers = {"Authorization": f"Bearer {tenant['owner_token']}"}
            post("/api/v1/models", {"name": "bench", "protocol": "openai", "provider_model": "gpt-bench",
                                    "base_url": fake.base_url, "api_key": "sk-bench-" + "x" * 24, "test": False},
                 headers)
            agent = post("/api/v1/agents", {"name": "Facade bench", "config": {"model": {"name": "bench"}}},
                         headers)["id"]
            post(f"/api/v1/agents/{agent}/publish", {}, headers)
            key = post("/api/v1/api-keys", {"name": "dify app", "resource_type": "agent", "resource_id": agent},
                       headers)["token"]
            app = {"Authorization": f"Bearer {key}"}
            native: list[float] = []
            facade: list[float] = []
            for n in range(WARMUP_PAIRS + MEASURED_PAIRS):
                pair = {}
                for api in (("native", "dify") if n % 2 == 0 else ("dify", "native")):
                    question = f"Question {n} through {api}: what is the refund window?"
                    first = (_first_delta(http, headers, agent, question) if api == "native"
                             else _first_message(http, app, question))
                    ttft = fake.take_ttft_ms(question)
                    assert ttft is not None, "the model server saw no streamed request"
                    pair[api] = first - ttft
                if n >= WARMUP_PAIRS:
                    native.append(pair["native"])
                    facade.append(pair["dify"])
        added = [d - n for d, n in zip(facade, native, strict=True)]
        _out(f"  {MEASURED_PAIRS} pairs after {WARMUP_PAIRS} warm-up pairs; overhead = first text at the client - "
             "model server TTFT")
        _out(f"  /api/v1/chat first message.delta:       {_stats(native)}")
        _out(f"  /dify/v1/chat-messages first message:   {_stats(facade)}")
        _out(f"  added by the facade (p50 of Dify - p50 of native): "
             f"{statistics.median(facade) - statistics.median(native):+.2f} ms   (goal <= 3 ms)")
        _out(f"  added by the facade, per pair: {_stats(added)}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        finally:
            fake.stop()
            tmp.cleanup()
