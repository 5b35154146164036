"""``openai-overhead``: what the compatible API facades (OpenAI's, Coze's) add to a chat turn
before the client sees text.

One local runtime (``python -m infra.local`` as a subprocess, real HTTP), one tenant, one
published quick-answer agent without knowledge (so retrieval's variance stays out of a
difference it does not belong to), and the scripted OpenAI-protocol model server of the chat
benchmark running in this process (it measures its own time to first token). Pairs of turns,
each pair the same agent through both APIs, one right after the other, their order alternating:
``POST /api/v1/chat`` (t1: the first ``message.delta``), ``POST /openai/v1/chat/completions``
with ``stream: true`` (t1: the first ``chat.completion.chunk`` carrying content; the chunk
before it only opens the assistant message) and ``POST /coze/v3/chat`` with ``stream: true``
(t1: the first ``conversation.message.delta``). All are read with the same raw SSE client
(httpx), so the SDKs' own parsing is not counted. Each turn's overhead is (t1 - t0) - the model
server's TTFT for its question; a facade's added time is its overhead minus the native one, as
medians and per set. Goal: <= 3 ms p50 added by each."""

from __future__ import annotations

import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

WARMUP_PAIRS = 20
MEASURED_PAIRS = 200
CHUNKS = 8


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _first_delta(http: httpx.Client, headers: dict[str, str], agent: str, question: str) -> float:
    """Milliseconds from sending the native chat to its first ``message.delta`` (read to the end)."""
    from httpx_sse import connect_sse

    t0 = time.perf_counter()
    first: float | None = None
    names = []
    with connect_sse(http, "POST", "/api/v1/chat", headers=headers,
                     json={"agent_id": agent, "message": question, "user": "bench"}) as source:
        if source.response.status_code != 200:
            raise RuntimeError(f"/api/v1/chat: {source.response.status_code} {source.response.read()!r}")
        for event in source.iter_sse():
            names.append(event.event)
            if event.event == "message.delta" and first is None:
                first = (time.perf_counter() - t0) * 1000
    if first is None or names[-1] != "done" or "error" in names:
        raise RuntimeError(f"/api/v1/chat: events {names}")
    return first


def _first_chunk(http: httpx.Client, headers: dict[str, str], agent: str, question: str) -> float:
    """Milliseconds from sending the OpenAI completion to its first chunk with content (read to [DONE])."""
    from httpx_sse import connect_sse

    t0 = time.perf_counter()
    first: float | None = None
    done = False
    with connect_sse(http, "POST", "/openai/v1/chat/completions", headers=headers,
                     json={"model": agent, "stream": True, "user": "bench",
                           "messages": [{"role": "user", "content": question}]}) as source:
        if source.response.status_code != 200:
            raise RuntimeError(f"/openai: {source.response.status_code} {source.response.read()!r}")
        for event in source.iter_sse():
            if event.data == "[DONE]":
                done = True
                break
            chunk = json.loads(event.data)
            if "error" in chunk:
                raise RuntimeError(f"/openai: {chunk}")
            if first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = (time.perf_counter() - t0) * 1000
    if first is None or not done:
        raise RuntimeError("/openai: no content or no [DONE]")
    return first


def _first_coze_delta(http: httpx.Client, headers: dict[str, str], agent: str, question: str) -> float:
    """Milliseconds from sending the Coze chat to its first ``conversation.message.delta`` (read to ``done``)."""
    from httpx_sse import connect_sse

    t0 = time.perf_counter()
    first: float | None = None
    names = []
    with connect_sse(http, "POST", "/coze/v3/chat", headers=headers,
                     json={"bot_id": agent, "user_id": "bench", "stream": True,
                           "additional_messages": [{"role": "user", "content": question,
                                                    "content_type": "text"}]}) as source:
        if source.response.status_code != 200:
            raise RuntimeError(f"/coze: {source.response.status_code} {source.response.read()!r}")
        for event in source.iter_sse():
            names.append(event.event)
            if event.event == "conversation.message.delta" and first is None:
                first = (time.perf_counter() - t0) * 1000
    if first is None or names[-2:] != ["conversation.chat.completed", "done"]:
        raise RuntimeError(f"/coze: events {names}")
    return first


def _stats(samples: list[float]) -> str:
    from benchmarks.chat import _percentile

    return (f"p50 {statistics.median(samples):6.2f} ms  p95 {_percentile(samples, 95):6.2f} ms  "
            f"mean {statistics.fmean(samples):6.2f} ms")


def run() -> None:
    from benchmarks.chat import TimedFakeOpenAI, _start_runtime

    _out("== API facades: first chunk through /openai/v1/chat/completions and first conversation.message.delta "
         "through /coze/v3/chat vs first message.delta through /api/v1/chat (same agent, same run) ==")
    fake = TimedFakeOpenAI().start()
    fake.chunks, fake.chunk_delay_s = CHUNKS, 0.0
    tmp = tempfile.TemporaryDirectory(prefix="stratus-bench-openai-")
    proc, info = _start_runtime(Path(tmp.name) / "state", Path(tmp.name) / "runtime.log")
    try:
        with httpx.Client(base_url=info["url"], timeout=120) as http:
            def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
                response = http.post(path, json=body, headers=headers)
                assert response.status_code == 201, f"{path}: {response.status_code} {response.text}"
                return response.json()["data"]

            admin = {"Authorization": f"Bearer {info['admin_token']}"}
            tenant = post("/api/v1/tenants", {"name": "bench-openai"}, admin)
            headers = {"Authorization": f"Bearer {tenant['owner_token']}"}
            post("/api/v1/models", {"name": "bench", "protocol": "openai", "provider_model": "gpt-bench",
                                    "base_url": fake.base_url, "api_key": "sk-bench-" + "x" * 24, "test": False},
                 headers)
            agent = post("/api/v1/agents", {"name": "Facade bench", "config": {"model": {"name": "bench"}}},
                         headers)["id"]
            post(f"/api/v1/agents/{agent}/publish", {}, headers)
            calls = {"native": _first_delta, "openai": _first_chunk, "coze": _first_coze_delta}
            apis = list(calls)
            samples: dict[str, list[float]] = {api: [] for api in apis}
            for n in range(WARMUP_PAIRS + MEASURED_PAIRS):
                measured = {}
                # Each API goes first, second and third in turn.
                for api in apis[n % 3:] + apis[:n % 3]:
                    question = f"Question {n} through {api}: what is the refund window?"
                    first = calls[api](http, headers, agent, question)
                    ttft = fake.take_ttft_ms(question)
                    assert ttft is not None, "the model server saw no streamed request"
                    measured[api] = first - ttft
                if n >= WARMUP_PAIRS:
                    for api in apis:
                        samples[api].append(measured[api])
        native = samples["native"]
        _out(f"  {MEASURED_PAIRS} sets after {WARMUP_PAIRS} warm-up sets; overhead = first text at the client - "
             "model server TTFT")
        _out(f"  /api/v1/chat first message.delta:                {_stats(native)}")
        _out(f"  /openai/v1/chat/completions first chunk:         {_stats(samples['openai'])}")
        _out(f"  /coze/v3/chat first conversation.message.delta:  {_stats(samples['coze'])}")
        for api, name in (("openai", "OpenAI"), ("coze", "Coze")):
            facade = samples[api]
            added = [f - n for f, n in zip(facade, native, strict=True)]
            _out(f"  added by the {name} facade (p50 of {name} - p50 of native): "
                 f"{statistics.median(facade) - statistics.median(native):+.2f} ms   (goal <= 3 ms)")
            _out(f"  added by the {name} facade, per set: {_stats(added)}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        finally:
            fake.stop()
            tmp.cleanup()
