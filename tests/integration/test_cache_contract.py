"""One contract for the cache ports, held by the in-process adapters (local runtime) and the
Redis adapters against a real cluster-mode server (ElastiCache Serverless only speaks cluster
mode). Every test runs once per adapter family."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError

from shared.cache.memory import MemoryEventStream, MemoryKeyValueStore, MemoryRateLimiter, parse_stream_id
from shared.cache.ports import EventStream, KeyValueStore, RateLimiter
from shared.cache.redis_adapter import RedisEventStream, RedisKeyValueStore, RedisRateLimiter, connect
from tests.support.redis_server import start_cluster_redis


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, stop = start_cluster_redis(tmp_path_factory.mktemp("valkey"))
    try:
        yield url
    finally:
        stop()


@pytest.fixture(scope="module")
def cluster_client(cluster_url: str) -> Iterator[Any]:
    client = connect(cluster_url, cluster=True)
    try:
        yield client
    finally:
        client.close()


@dataclass
class Adapters:
    kind: str
    kv: KeyValueStore
    limiter: RateLimiter
    stream: EventStream


@pytest.fixture(params=["memory", "redis-cluster"])
def cache(request: pytest.FixtureRequest) -> Adapters:
    if request.param == "memory":
        return Adapters("memory", MemoryKeyValueStore(), MemoryRateLimiter(), MemoryEventStream())
    client = request.getfixturevalue("cluster_client")
    return Adapters("redis-cluster", RedisKeyValueStore(client), RedisRateLimiter(client),
                    RedisEventStream(client))


@pytest.fixture
def ns() -> str:
    """A unique prefix: the Redis server is shared by the module (and may be a real one)."""
    return "t" + uuid.uuid4().hex[:12]


# --- key-value store ---------------------------------------------------------------------------


def test_get_set_and_overwrite(cache: Adapters, ns: str) -> None:
    kv = cache.kv
    assert kv.get(f"{ns}:k") is None
    assert kv.set(f"{ns}:k", "v1") is True
    assert kv.get(f"{ns}:k") == "v1"
    assert kv.set(f"{ns}:k", "v2") is True
    assert kv.get(f"{ns}:k") == "v2"
    assert kv.get(f"{ns}:other") is None
    assert kv.ttl(f"{ns}:k") is None  # no expiry
    assert kv.ttl(f"{ns}:missing") is None


def test_only_if_absent(cache: Adapters, ns: str) -> None:
    kv = cache.kv
    assert kv.set(f"{ns}:lock", "owner-a", only_if_absent=True) is True
    assert kv.set(f"{ns}:lock", "owner-b", only_if_absent=True) is False
    assert kv.get(f"{ns}:lock") == "owner-a"
    assert kv.set(f"{ns}:lock", "owner-c", ttl_s=60, only_if_absent=False) is True
    assert kv.get(f"{ns}:lock") == "owner-c"


def test_delete(cache: Adapters, ns: str) -> None:
    kv = cache.kv
    kv.set(f"{ns}:k", "v")
    assert kv.delete(f"{ns}:k") is True
    assert kv.get(f"{ns}:k") is None
    assert kv.delete(f"{ns}:k") is False
    assert kv.set(f"{ns}:k", "again", only_if_absent=True) is True


def test_ttl_is_reported(cache: Adapters, ns: str) -> None:
    kv = cache.kv
    kv.set(f"{ns}:k", "v", ttl_s=100)
    ttl = kv.ttl(f"{ns}:k")
    assert ttl is not None and 98 <= ttl <= 100
    kv.set(f"{ns}:k", "v")  # a plain set clears the expiry, as in Redis
    assert kv.ttl(f"{ns}:k") is None


def test_incr_sets_ttl_only_on_creation(cache: Adapters, ns: str) -> None:
    kv = cache.kv
    assert kv.incr(f"{ns}:n") == 1
    assert kv.incr(f"{ns}:n", 5) == 6
    assert kv.incr(f"{ns}:n", -2) == 4
    assert kv.get(f"{ns}:n") == "4"
    assert kv.incr(f"{ns}:n", ttl_s=50) == 5  # existing key without expiry keeps none
    assert kv.ttl(f"{ns}:n") is None

    assert kv.incr(f"{ns}:c", 3, ttl_s=100) == 3
    first = kv.ttl(f"{ns}:c")
    assert first is not None and 98 <= first <= 100
    assert kv.incr(f"{ns}:c", ttl_s=10_000) == 4  # not extended, not replaced
    second = kv.ttl(f"{ns}:c")
    assert second is not None and second <= 100


def test_incr_is_atomic_across_threads(cache: Adapters, ns: str) -> None:
    kv = cache.kv

    def work() -> None:
        for _ in range(25):
            kv.incr(f"{ns}:hits", ttl_s=60)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kv.get(f"{ns}:hits") == "200"
    ttl = kv.ttl(f"{ns}:hits")
    assert ttl is not None and ttl <= 60


def test_expiry_of_keys_counters_and_streams(cache: Adapters, ns: str) -> None:
    """The one test that sleeps: every TTL'd thing is gone 1.1 s after a 1 s TTL."""
    kv, stream = cache.kv, cache.stream
    kv.set(f"{ns}:k", "v", ttl_s=1)
    kv.set(f"{ns}:forever", "v")
    assert kv.incr(f"{ns}:c", 7, ttl_s=1) == 7
    assert kv.ttl(f"{ns}:k") == 1
    stream.append(f"{ns}:s", "tick", {"n": 1}, ttl_s=1)
    assert len(stream.read(f"{ns}:s")) == 1
    assert kv.set(f"{ns}:k", "other", only_if_absent=True) is False

    time.sleep(1.1)

    assert kv.get(f"{ns}:k") is None
    assert kv.ttl(f"{ns}:k") is None
    assert kv.get(f"{ns}:forever") == "v"
    assert kv.incr(f"{ns}:c", 2) == 2  # a new counter, not 9
    assert kv.ttl(f"{ns}:c") is None  # recreated without ttl_s: no expiry
    assert stream.read(f"{ns}:s") == []
    assert kv.set(f"{ns}:k", "other", only_if_absent=True) is True


# --- rate limiter -----------------------------------------------------------------------------


def test_rate_limiter_exhausts_capacity(cache: Adapters, ns: str) -> None:
    limiter = cache.limiter
    decisions = [limiter.acquire(f"{ns}:b", capacity=3, refill_per_s=1.0) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(d.limit == 3 and d.retry_after_s == 0 for d in decisions)
    assert 0 < decisions[0].reset_s <= 1.0
    assert 2.5 < decisions[-1].reset_s <= 3.0

    denied = limiter.acquire(f"{ns}:b", capacity=3, refill_per_s=1.0)
    assert denied.allowed is False
    assert denied.remaining == 0
    assert denied.limit == 3
    assert 0.5 < denied.retry_after_s <= 1.0
    assert 2.5 < denied.reset_s <= 3.0


def test_rate_limiter_refills_over_time(cache: Adapters, ns: str) -> None:
    limiter = cache.limiter
    assert limiter.acquire(f"{ns}:b", capacity=1, refill_per_s=10.0).allowed
    denied = limiter.acquire(f"{ns}:b", capacity=1, refill_per_s=10.0)
    assert denied.allowed is False
    assert 0 < denied.retry_after_s <= 0.1

    time.sleep(denied.retry_after_s + 0.05)
    again = limiter.acquire(f"{ns}:b", capacity=1, refill_per_s=10.0)
    assert again.allowed is True
    assert again.remaining == 0
    assert limiter.acquire(f"{ns}:b", capacity=1, refill_per_s=10.0).allowed is False


def test_rate_limiter_cost_greater_than_one(cache: Adapters, ns: str) -> None:
    limiter = cache.limiter
    first = limiter.acquire(f"{ns}:b", capacity=5, refill_per_s=1.0, cost=3)
    assert first.allowed and first.remaining == 2
    denied = limiter.acquire(f"{ns}:b", capacity=5, refill_per_s=1.0, cost=3)
    assert denied.allowed is False
    assert denied.remaining == 2  # a denied request takes nothing
    assert 0.8 < denied.retry_after_s <= 1.0
    fits = limiter.acquire(f"{ns}:b", capacity=5, refill_per_s=1.0, cost=2)
    assert fits.allowed and fits.remaining == 0

    with pytest.raises(ValueError):
        limiter.acquire(f"{ns}:b", capacity=5, refill_per_s=1.0, cost=6)
    with pytest.raises(ValueError):
        limiter.acquire(f"{ns}:b", capacity=5, refill_per_s=0.0)


def test_rate_limiter_buckets_are_independent(cache: Adapters, ns: str) -> None:
    limiter = cache.limiter
    for _ in range(2):
        limiter.acquire(f"{ns}:tenant-a", capacity=2, refill_per_s=0.1)
    assert limiter.acquire(f"{ns}:tenant-a", capacity=2, refill_per_s=0.1).allowed is False
    other = limiter.acquire(f"{ns}:tenant-b", capacity=2, refill_per_s=0.1)
    assert other.allowed is True and other.remaining == 1


def test_rate_limiter_is_atomic_across_threads(cache: Adapters, ns: str) -> None:
    limiter = cache.limiter
    allowed: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            decision = limiter.acquire(f"{ns}:shared", capacity=30, refill_per_s=0.01)
            with lock:
                allowed.append(decision.allowed)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 80
    assert allowed.count(True) == 30


# --- event stream -----------------------------------------------------------------------------


def test_stream_ids_increase_and_events_round_trip(cache: Adapters, ns: str) -> None:
    stream = cache.stream
    payloads = [{"n": i, "text": "héllo ✓", "nested": {"list": [1, None, True]}} for i in range(5)]
    ids = [stream.append(f"{ns}:s", f"type-{i}", payload) for i, payload in enumerate(payloads)]
    parsed = [parse_stream_id(event_id) for event_id in ids]
    assert parsed == sorted(parsed) and len(set(parsed)) == 5

    events = stream.read(f"{ns}:s")
    assert [e.id for e in events] == ids
    assert [e.type for e in events] == [f"type-{i}" for i in range(5)]
    assert [e.data for e in events] == payloads

    later = stream.append(f"{ns}:s", "later", {})
    assert parse_stream_id(later) > parsed[-1]


def test_stream_read_after_id_and_count(cache: Adapters, ns: str) -> None:
    stream = cache.stream
    ids = [stream.append(f"{ns}:s", "e", {"i": i}) for i in range(6)]
    assert [e.id for e in stream.read(f"{ns}:s", ids[2])] == ids[3:]
    assert [e.id for e in stream.read(f"{ns}:s", None, count=2)] == ids[:2]
    assert [e.id for e in stream.read(f"{ns}:s", ids[0], count=3)] == ids[1:4]
    assert stream.read(f"{ns}:s", ids[-1]) == []
    # An id between entries (a client resuming after a trimmed or unknown id) reads what follows.
    ms, seq = parse_stream_id(ids[3])
    between = f"{ms}-{seq - 1}" if seq > 0 else f"{ms - 1}-99999"
    assert [e.id for e in stream.read(f"{ns}:s", between)] == ids[3:]
    with pytest.raises(ValueError):
        stream.read(f"{ns}:s", "not-an-id")


def test_stream_empty_reads(cache: Adapters, ns: str) -> None:
    stream = cache.stream
    assert stream.read(f"{ns}:nothing") == []
    assert stream.read(f"{ns}:nothing", "0-0") == []
    other = stream.append(f"{ns}:other", "e", {})
    assert stream.read(f"{ns}:nothing", other) == []  # streams do not leak into each other


def test_stream_maxlen_trims_oldest(cache: Adapters, ns: str) -> None:
    stream = cache.stream
    ids = [stream.append(f"{ns}:s", "e", {"i": i}, maxlen=10) for i in range(250)]
    kept = [e.id for e in stream.read(f"{ns}:s", count=1000)]
    # Redis trims approximately (MAXLEN ~, whole nodes): at least maxlen, far fewer than 250.
    assert 10 <= len(kept) < 250
    assert ids[0] not in kept
    assert kept == ids[-len(kept):]


def test_stream_block_returns_when_another_thread_appends(cache: Adapters, ns: str) -> None:
    stream = cache.stream
    first = stream.append(f"{ns}:s", "first", {})
    appended: list[str] = []

    def append_later() -> None:
        time.sleep(0.3)
        appended.append(stream.append(f"{ns}:s", "second", {"x": 1}))

    writer = threading.Thread(target=append_later)
    started = time.monotonic()
    writer.start()
    events = stream.read(f"{ns}:s", first, block_ms=5_000)
    elapsed = time.monotonic() - started
    writer.join()
    assert [(e.id, e.type, e.data) for e in events] == [(appended[0], "second", {"x": 1})]
    assert 0.2 <= elapsed < 3.0


def test_stream_block_from_start_on_a_new_stream(cache: Adapters, ns: str) -> None:
    stream = cache.stream
    writer = threading.Timer(0.2, lambda: stream.append(f"{ns}:fresh", "hello", {}))
    started = time.monotonic()
    writer.start()
    events = stream.read(f"{ns}:fresh", None, block_ms=5_000)
    elapsed = time.monotonic() - started
    writer.join()
    assert [e.type for e in events] == ["hello"]
    assert elapsed < 3.0


def test_stream_block_times_out_empty(cache: Adapters, ns: str) -> None:
    stream = cache.stream
    last = stream.append(f"{ns}:s", "e", {})
    stream.append(f"{ns}:unrelated", "e", {})
    started = time.monotonic()
    assert stream.read(f"{ns}:s", last, block_ms=300) == []
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 2.0
    started = time.monotonic()
    assert stream.read(f"{ns}:s", last, block_ms=0) == []  # 0 never waits
    assert time.monotonic() - started < 0.2


# --- the server really is a cluster -----------------------------------------------------------


def test_server_is_in_cluster_mode_and_adapters_keep_to_one_slot(
        cluster_url: str, cluster_client: Any, ns: str) -> None:
    node = redis.Redis.from_url(cluster_url, decode_responses=True)
    try:
        assert int(node.info("cluster")["cluster_enabled"]) == 1
        key_a, key_b = f"{ns}:a", f"{ns}:b"
        assert node.execute_command("CLUSTER", "KEYSLOT", key_a) != node.execute_command(
            "CLUSTER", "KEYSLOT", key_b)

        # The server itself refuses multi-key work across slots...
        with pytest.raises(ClusterCrossSlotError):
            node.execute_command("MSET", key_a, "1", key_b, "2")
        with pytest.raises(ClusterCrossSlotError):
            node.eval("return redis.call('SET', KEYS[1], '1')", 2, key_a, key_b)
        # ...and accepts it when the keys share a hash tag.
        assert node.execute_command("MSET", "{" + ns + "}:a", "1", "{" + ns + "}:b", "2")

        # The adapters' scripts and multi-command operations work on the cluster.
        kv, limiter, stream = (RedisKeyValueStore(cluster_client), RedisRateLimiter(cluster_client),
                               RedisEventStream(cluster_client))
        assert kv.incr(f"{ns}:n", ttl_s=30) == 1
        assert limiter.acquire(f"{ns}:bucket", capacity=1, refill_per_s=1.0).allowed
        assert not limiter.acquire(f"{ns}:bucket", capacity=1, refill_per_s=1.0).allowed
        event_id = stream.append(f"{ns}:run", "started", {"ok": True}, ttl_s=30, maxlen=5)
        assert [e.id for e in stream.read(f"{ns}:run")] == [event_id]

        # Their keys are hash-tagged on the bucket / stream name and carry an expiry.
        rl_key, stream_key = RedisRateLimiter.key(f"{ns}:bucket"), RedisEventStream.key(f"{ns}:run")
        assert node.execute_command("CLUSTER", "KEYSLOT", rl_key) == node.execute_command(
            "CLUSTER", "KEYSLOT", f"{ns}:bucket")
        assert node.execute_command("CLUSTER", "KEYSLOT", stream_key) == node.execute_command(
            "CLUSTER", "KEYSLOT", f"{ns}:run")
        assert 0 < node.pttl(rl_key) <= 2_000
        assert 0 < node.ttl(stream_key) <= 30
    finally:
        node.close()


def test_connect_builds_configured_clients(cluster_url: str, cluster_client: Any, ns: str) -> None:
    assert isinstance(cluster_client, RedisCluster)
    standalone = connect(cluster_url, cluster=False, socket_timeout_s=3.0)
    try:
        assert isinstance(standalone, redis.Redis)
        options = standalone.get_connection_kwargs()
        assert options["socket_timeout"] == 3.0
        assert options["socket_connect_timeout"] > 0
        assert options["health_check_interval"] > 0
        assert options["decode_responses"] is True
        # A plain client works against a one-node cluster because every adapter op is one slot.
        kv = RedisKeyValueStore(standalone)
        assert kv.incr(f"{ns}:n", 2, ttl_s=30) == 2
        assert RedisKeyValueStore(cluster_client).get(f"{ns}:n") == "2"
    finally:
        standalone.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_stream_reads_with_either_resp_protocol(cluster_url: str, ns: str, protocol: int) -> None:
    client = RedisCluster.from_url(cluster_url, decode_responses=True, protocol=protocol)
    try:
        stream = RedisEventStream(client)
        ids = [stream.append(f"{ns}:s", "e", {"i": i}) for i in range(3)]
        assert [(e.id, e.data) for e in stream.read(f"{ns}:s")] == [(ids[i], {"i": i}) for i in range(3)]
        assert [e.id for e in stream.read(f"{ns}:s", ids[0], count=1)] == [ids[1]]
        assert stream.read(f"{ns}:s", ids[-1], block_ms=50) == []
    finally:
        client.close()


def test_start_cluster_redis_uses_redis_url_when_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRATUS_TEST_REDIS_URL", "rediss://example.invalid:6379/0")
    url, stop = start_cluster_redis(tmp_path)
    assert url == "rediss://example.invalid:6379/0"
    stop()
    assert list(tmp_path.iterdir()) == []  # nothing started
