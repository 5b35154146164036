"""Ports for what Redis does for Stratus. Keys that a single operation touches together
share a hash tag (``{run:<id>}``) so the same code runs on ElastiCache Serverless, which
only speaks cluster mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class KeyValueStore(Protocol):
    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, *, ttl_s: int | None = None, only_if_absent: bool = False) -> bool:
        """Store ``value``; with ``only_if_absent`` store only if the key is missing.
        Returns whether the value was stored."""
        ...

    def delete(self, key: str) -> bool: ...

    def incr(self, key: str, amount: int = 1, *, ttl_s: int | None = None) -> int:
        """Add ``amount`` and return the new value; ``ttl_s`` is set when the key is created."""
        ...

    def ttl(self, key: str) -> int | None:
        """Seconds left, or None for a missing key or one without expiry."""
        ...


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until a request of the same cost would be allowed (0 when allowed).
    retry_after_s: float
    # Seconds until the bucket is full again.
    reset_s: float


class RateLimiter(Protocol):
    def acquire(self, bucket: str, *, capacity: int, refill_per_s: float, cost: int = 1) -> RateDecision:
        """Token bucket: take ``cost`` tokens from ``bucket`` if it holds them."""
        ...


@dataclass(frozen=True)
class StreamEvent:
    id: str
    type: str
    data: dict[str, Any]


class EventStream(Protocol):
    def append(self, stream: str, event_type: str, data: dict[str, Any], *,
               ttl_s: int = 86_400, maxlen: int = 10_000) -> str:
        """Append an event; returns its id (monotonic within the stream)."""
        ...

    def read(self, stream: str, after_id: str | None = None, *, count: int = 100,
             block_ms: int = 0) -> list[StreamEvent]:
        """Events after ``after_id`` (all when None), waiting up to ``block_ms`` for one."""
        ...
