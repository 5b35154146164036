"""Gateway overhead on a streamed chat: OpenAIProvider.stream wrapped in RetryPolicy.stream and
CircuitBreaker.stream (state in a MemoryKeyValueStore), against the bare openai SDK, both on
the same local fake OpenAI server (tests.support.fake_openai) over keep-alive HTTP.

- time to first token (the first content delta): p50/p95 of each path, and of the paired
  per-run difference, over RUNS interleaved runs;
- per-chunk overhead: a STREAM_CHUNKS-chunk stream read to its end by each path; the median
  total-time difference divided by the number of chunks.

Goal: <= 5 ms added to the first token, <= 0.2 ms per chunk.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator

from shared.cache.memory import MemoryKeyValueStore
from shared.models.providers.openai_provider import OpenAIProvider
from shared.models.resilience import CircuitBreaker, RetryPolicy
from shared.models.types import ChatEvent, ChatRequest, Credentials, Message, TextDelta, Timeouts
from tests.support.fake_openai import ChatScript, FakeOpenAI

RUNS = 200
WARMUP = 20
STREAM_CHUNKS = 500
STREAM_RUNS = 21
MODEL = "gpt-bench"
FIRST_TOKEN_GOAL_MS = 5.0
PER_CHUNK_GOAL_MS = 0.2


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _bare(base_url: str) -> Callable[[], Iterator[str]]:
    import openai

    client = openai.OpenAI(api_key="sk-bench", base_url=base_url, max_retries=0,
                           timeout=openai.Timeout(30, connect=5))

    def stream() -> Iterator[str]:
        chunks = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}], stream=True,
            stream_options={"include_usage": True})
        for chunk in chunks:
            for choice in chunk.choices:
                if choice.delta.content:
                    yield choice.delta.content

    return stream


def _gateway(base_url: str, *, resilience: bool = True) -> Callable[[], Iterator[str]]:
    provider = OpenAIProvider()
    credentials = Credentials(api_key="sk-bench", base_url=base_url)
    timeouts = Timeouts(connect_s=5, read_s=30, stream_idle_s=30)
    request = ChatRequest(messages=[Message(role="user", content="Hello")])
    policy = RetryPolicy()
    breaker = CircuitBreaker.for_model(MemoryKeyValueStore(), "openai", MODEL)

    def provider_stream() -> Iterator[ChatEvent]:
        return provider.stream(MODEL, request, credentials, timeouts)

    def stream() -> Iterator[str]:
        events = policy.stream(lambda: breaker.stream(provider_stream)) if resilience else provider_stream()
        for event in events:
            if isinstance(event, TextDelta):
                yield event.text

    return stream


def _first_token_ms(stream: Callable[[], Iterator[str]]) -> float:
    started = time.perf_counter()
    iterator = stream()
    next(iterator)
    elapsed = (time.perf_counter() - started) * 1000
    for _ in iterator:  # read to the end so the connection goes back to the pool
        pass
    return elapsed


def _full_stream_ms(stream: Callable[[], Iterator[str]], expected: int) -> float:
    started = time.perf_counter()
    count = sum(1 for _ in stream())
    elapsed = (time.perf_counter() - started) * 1000
    assert count == expected, count
    return elapsed


def run() -> None:
    print("== Gateway overhead: OpenAIProvider + RetryPolicy + CircuitBreaker vs the bare openai SDK ==")
    with FakeOpenAI() as server:
        bare, gateway = _bare(server.base_url), _gateway(server.base_url)

        short = ChatScript(text=["Hello", " there", "!"])
        for _ in range(WARMUP):
            for path in (bare, gateway):
                server.enqueue(short)
                _first_token_ms(path)
        bare_ms: list[float] = []
        gateway_ms: list[float] = []
        connections = {id(bare): 0, id(gateway): 0}
        for i in range(RUNS):
            # Interleaved, alternating which goes first, so drift hits both paths alike.
            order = ((bare, bare_ms), (gateway, gateway_ms)) if i % 2 else ((gateway, gateway_ms), (bare, bare_ms))
            for path, samples in order:
                server.enqueue(short)
                before = server.connections
                samples.append(_first_token_ms(path))
                connections[id(path)] += server.connections - before
        diffs = [g - b for g, b in zip(gateway_ms, bare_ms, strict=True)]
        print(f"first token, bare SDK : p50 {statistics.median(bare_ms):6.3f} ms  "
              f"p95 {_percentile(bare_ms, 95):6.3f} ms")
        print(f"first token, gateway  : p50 {statistics.median(gateway_ms):6.3f} ms  "
              f"p95 {_percentile(gateway_ms, 95):6.3f} ms")
        added_p50 = statistics.median(gateway_ms) - statistics.median(bare_ms)
        added_p95 = _percentile(gateway_ms, 95) - _percentile(bare_ms, 95)
        print(f"first token, added    : p50 {added_p50:6.3f} ms  p95 {added_p95:6.3f} ms  "
              f"(paired differences: p50 {statistics.median(diffs):6.3f} ms  p95 {_percentile(diffs, 95):6.3f} ms; "
              f"{RUNS} runs)")
        print(f"new TCP connections   : bare {connections[id(bare)]}/{RUNS} streams, "
              f"gateway {connections[id(gateway)]}/{RUNS} (the SDK's Stream drops its connection after [DONE])")

        long = ChatScript(text=["tok"] * STREAM_CHUNKS)
        bare_full: list[float] = []
        gateway_full: list[float] = []
        for i in range(STREAM_RUNS + 2):
            order = ((bare, bare_full), (gateway, gateway_full)) if i % 2 else ((gateway, gateway_full),
                                                                                 (bare, bare_full))
            for path, samples in order:
                server.enqueue(long)
                samples.append(_full_stream_ms(path, STREAM_CHUNKS))
        bare_full, gateway_full = bare_full[2:], gateway_full[2:]  # the first two warm up
        per_chunk = (statistics.median(gateway_full) - statistics.median(bare_full)) / STREAM_CHUNKS
        print(f"{STREAM_CHUNKS}-chunk stream     : bare p50 {statistics.median(bare_full):7.2f} ms  "
              f"gateway p50 {statistics.median(gateway_full):7.2f} ms  ({STREAM_RUNS} runs each)")
        print(f"per-chunk overhead    : {per_chunk:6.4f} ms")

        # The resilience layers alone: the same provider with and without them.
        plain = _gateway(server.base_url, resilience=False)
        plain_ms: list[float] = []
        wrapped_ms: list[float] = []
        for i in range(RUNS):
            order = ((plain, plain_ms), (gateway, wrapped_ms)) if i % 2 else ((gateway, wrapped_ms),
                                                                               (plain, plain_ms))
            for path, samples in order:
                server.enqueue(short)
                samples.append(_first_token_ms(path))
        print(f"RetryPolicy + CircuitBreaker alone: first token p50 "
              f"{statistics.median(wrapped_ms) - statistics.median(plain_ms):6.3f} ms "
              f"(provider alone p50 {statistics.median(plain_ms):6.3f} ms)")
        full_added = _full_gateway(server, bare, short)
    verdict_first = "met" if max(added_p50, full_added) <= FIRST_TOKEN_GOAL_MS else "MISSED"
    verdict_chunk = "met" if per_chunk <= PER_CHUNK_GOAL_MS else "MISSED"
    print(f"goal: <= {FIRST_TOKEN_GOAL_MS:g} ms added to the first token (p50): {verdict_first}; "
          f"<= {PER_CHUNK_GOAL_MS:g} ms per chunk: {verdict_chunk}")


def _full_gateway(server: FakeOpenAI, bare: Callable[[], Iterator[str]], script: ChatScript) -> float:
    """The whole ModelGateway.stream_chat path as agents will use it: model resolution
    (cached), quota check, provider under retry and breaker, usage recorded in PostgreSQL
    (embedded, application role) after the stream. Returns the p50 added to the first token."""
    import tempfile
    import uuid
    from pathlib import Path

    from infra.local.postgres import start_embedded_postgres
    from shared.auth.token_state import TokenStateStore
    from shared.db.database import PooledDatabase
    from shared.models import repository as repo
    from shared.models.gateway import ModelGateway
    from shared.models.resolver import ModelResolver
    from shared.models.spec import ModelSpec
    from shared.models.usage import UsageService
    from shared.platform.bootstrap import bootstrap
    from shared.tenancy.models import CreateTenant
    from shared.tenancy.service import TenancyService

    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as tmp:
        pg = start_embedded_postgres(Path(tmp) / "pg")
        try:
            bootstrap(pg.admin_url, app_password=None, admin_token=None)
            db = PooledDatabase(pg.app_url, max_size=4)
            kv = MemoryKeyValueStore()
            tenant_id = TenancyService(db, TokenStateStore(kv, 300)).create_tenant(CreateTenant(name="bench")).tenant.id
            spec = ModelSpec(name="bench-model", display_name="bench", protocol="openai",  # type: ignore[arg-type]
                             provider_model=MODEL, capabilities=["chat"],  # type: ignore[list-item]
                             connection={"base_url": server.base_url})  # type: ignore[arg-type]
            with db.transaction(tenant_id) as conn:
                repo.insert_tenant_model(conn, uuid.uuid4(), tenant_id, spec.name, spec.model_dump(mode="json"), None)
            gateway = ModelGateway(db, ModelResolver(db, 60), UsageService(db, kv), kv, lambda: None)  # type: ignore[arg-type,return-value]
            request = ChatRequest(messages=[Message(role="user", content="hi")])

            def full() -> Iterator[str]:
                events, _, _ = gateway.stream_chat(tenant_id, request, model="bench-model")
                for event in events:
                    if isinstance(event, TextDelta):
                        yield event.text

            for _ in range(WARMUP):
                server.enqueue(script)
                _first_token_ms(full)
            full_ms: list[float] = []
            bare_ms: list[float] = []
            for i in range(RUNS):
                order = ((bare, bare_ms), (full, full_ms)) if i % 2 else ((full, full_ms), (bare, bare_ms))
                for path, samples in order:
                    server.enqueue(script)
                    samples.append(_first_token_ms(path))
            db.close()
        finally:
            pg.stop()
    added = statistics.median(full_ms) - statistics.median(bare_ms)
    print(f"whole ModelGateway.stream_chat (resolver, quota, usage row): first token p50 "
          f"{statistics.median(full_ms):6.3f} ms, p95 {_percentile(full_ms, 95):6.3f} ms; "
          f"added vs bare SDK p50 {added:6.3f} ms")
    return added


if __name__ == "__main__":
    run()
