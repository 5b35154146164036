"""In-process adapters for the local runtime (one process serves every function)."""

from __future__ import annotations

import bisect
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from shared.cache.ports import RateDecision, StreamEvent

# Idle state (expired keys and streams, full buckets) is swept at most this often.
_SWEEP_INTERVAL_S = 30.0


class MemoryKeyValueStore:
    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._lock = threading.Lock()
        self._next_sweep = time.monotonic() + _SWEEP_INTERVAL_S

    def _sweep(self) -> None:
        """Drop expired keys nobody reads again (lock held); at most every sweep interval."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL_S
        expired = [key for key, (_, expires) in self._data.items() if expires is not None and expires <= now]
        for key in expired:
            del self._data[key]

    def _live(self, key: str) -> tuple[str, float | None] | None:
        item = self._data.get(key)
        if item is not None and item[1] is not None and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._live(key)
            return item[0] if item else None

    def set(self, key: str, value: str, *, ttl_s: int | None = None, only_if_absent: bool = False) -> bool:
        with self._lock:
            self._sweep()
            if only_if_absent and self._live(key) is not None:
                return False
            self._data[key] = (value, time.monotonic() + ttl_s if ttl_s else None)
            return True

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._live(key) is not None and self._data.pop(key, None) is not None

    def incr(self, key: str, amount: int = 1, *, ttl_s: int | None = None) -> int:
        with self._lock:
            self._sweep()
            item = self._live(key)
            if item is None:
                value, expires = amount, (time.monotonic() + ttl_s if ttl_s else None)
            else:
                value, expires = int(item[0]) + amount, item[1]
            self._data[key] = (str(value), expires)
            return value

    def ttl(self, key: str) -> int | None:
        with self._lock:
            item = self._live(key)
            if item is None or item[1] is None:
                return None
            return max(0, round(item[1] - time.monotonic()))


# --- argument checks shared with the Redis adapters (one contract, one set of rules) ---

_STREAM_ID = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_stream_id(value: str) -> tuple[int, int]:
    """``"<ms>-<seq>"`` (or ``"<ms>"``, meaning ``<ms>-0``) as a comparable tuple."""
    match = _STREAM_ID.match(value)
    if match is None:
        raise ValueError(f"not a stream id: {value!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def check_rate_args(capacity: int, refill_per_s: float, cost: int) -> None:
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    if not refill_per_s > 0 or math.isinf(refill_per_s):
        raise ValueError("refill_per_s must be a positive finite number")
    if cost < 1 or cost > capacity:
        raise ValueError("cost must be between 1 and capacity")


def check_stream_args(*, ttl_s: int = 1, maxlen: int = 1, count: int = 1) -> None:
    if ttl_s < 1:
        raise ValueError("ttl_s must be at least 1")
    if maxlen < 1:
        raise ValueError("maxlen must be at least 1")
    if count < 1:
        raise ValueError("count must be at least 1")


class MemoryRateLimiter:
    """Token buckets in a dict; the same arithmetic as the Redis script."""

    def __init__(self) -> None:
        # bucket -> (tokens, updated_at, full_at) on the monotonic clock
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._lock = threading.Lock()
        self._next_sweep = time.monotonic() + _SWEEP_INTERVAL_S

    def acquire(self, bucket: str, *, capacity: int, refill_per_s: float, cost: int = 1) -> RateDecision:
        check_rate_args(capacity, refill_per_s, cost)
        with self._lock:
            now = time.monotonic()
            self._sweep(now)
            state = self._buckets.get(bucket)
            if state is None:
                tokens = float(capacity)
            else:
                tokens = min(float(capacity), state[0] + max(0.0, now - state[1]) * refill_per_s)
            allowed = tokens >= cost
            retry_after = 0.0
            if allowed:
                tokens -= cost
            else:
                retry_after = math.ceil((cost - tokens) / refill_per_s * 1000) / 1000
            reset = math.ceil((capacity - tokens) / refill_per_s * 1000) / 1000
            self._buckets[bucket] = (tokens, now, now + reset)
        return RateDecision(allowed=allowed, limit=capacity, remaining=max(0, math.floor(tokens + 1e-9)),
                            retry_after_s=retry_after, reset_s=reset)

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL_S
        for name in [name for name, state in self._buckets.items() if state[2] <= now]:
            del self._buckets[name]


@dataclass
class _Stream:
    ids: list[tuple[int, int]] = field(default_factory=list)
    events: list[StreamEvent] = field(default_factory=list)
    expires_at: float = 0.0


class MemoryEventStream:
    """Streams with Redis-style ids (``<ms>-<seq>``, monotonic per stream); readers block on a
    condition per stream that every append to that stream notifies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        # stream -> (condition over self._lock, number of waiting readers)
        self._waiters: dict[str, tuple[threading.Condition, int]] = {}
        self._next_sweep = time.monotonic() + _SWEEP_INTERVAL_S

    def append(self, stream: str, event_type: str, data: dict[str, Any], *,
               ttl_s: int = 86_400, maxlen: int = 10_000) -> str:
        check_stream_args(ttl_s=ttl_s, maxlen=maxlen)
        # Round-trip through JSON like the Redis adapter: same accepted values, and a caller
        # mutating ``data`` afterwards does not change the stored event.
        payload = json.loads(json.dumps(data))
        with self._lock:
            now = time.monotonic()
            self._sweep(now)
            current = self._live(stream, now)
            if current is None:
                current = self._streams[stream] = _Stream()
            wall_ms = time.time_ns() // 1_000_000
            if current.ids and current.ids[-1][0] >= wall_ms:
                new_id = (current.ids[-1][0], current.ids[-1][1] + 1)
            else:
                new_id = (wall_ms, 0)
            event_id = f"{new_id[0]}-{new_id[1]}"
            current.ids.append(new_id)
            current.events.append(StreamEvent(id=event_id, type=event_type, data=payload))
            if len(current.ids) > maxlen:
                del current.ids[:-maxlen]
                del current.events[:-maxlen]
            current.expires_at = now + ttl_s
            waiting = self._waiters.get(stream)
            if waiting is not None:
                waiting[0].notify_all()
            return event_id

    def read(self, stream: str, after_id: str | None = None, *, count: int = 100,
             block_ms: int = 0) -> list[StreamEvent]:
        check_stream_args(count=count)
        after = (0, 0) if after_id is None else parse_stream_id(after_id)
        deadline = time.monotonic() + max(0, block_ms) / 1000
        with self._lock:
            while True:
                now = time.monotonic()
                current = self._live(stream, now)
                if current is not None:
                    start = bisect.bisect_right(current.ids, after)
                    if start < len(current.ids):
                        return current.events[start:start + count]
                remaining = deadline - now
                if block_ms <= 0 or remaining <= 0:
                    return []
                self._wait(stream, remaining)

    def _wait(self, stream: str, timeout_s: float) -> None:
        """Wait (lock held) until an append to ``stream`` or the timeout."""
        condition, waiting = self._waiters.get(stream) or (threading.Condition(self._lock), 0)
        self._waiters[stream] = (condition, waiting + 1)
        try:
            condition.wait(timeout_s)
        finally:
            condition, waiting = self._waiters[stream]
            if waiting <= 1:
                del self._waiters[stream]
            else:
                self._waiters[stream] = (condition, waiting - 1)

    def _live(self, stream: str, now: float) -> _Stream | None:
        current = self._streams.get(stream)
        if current is not None and current.expires_at <= now:
            del self._streams[stream]
            return None
        return current

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL_S
        for name in [name for name, item in self._streams.items() if item.expires_at <= now]:
            del self._streams[name]
