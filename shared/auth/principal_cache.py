"""Resolved tokens kept per container, the way API Gateway caches the authorizer's answers,
for functions that authenticate themselves (function URLs have no authorizer). Revocation and
role changes still apply at once: the token state in Redis is read on every request, and its
markers outlive this cache (AUTHORIZER_CACHE_TTL_S + a margin)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.auth.principal import Principal

MAX_ENTRIES = 1024


class PrincipalCache:
    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        # Keyed by the token's hash: the secret itself is never kept.
        self._entries: dict[bytes, tuple[Principal, float]] = {}

    def get(self, token_hash: bytes) -> Principal | None:
        if self._ttl_s <= 0:
            return None
        with self._lock:
            found = self._entries.get(token_hash)
            if found is None:
                return None
            if found[1] <= self._clock():
                del self._entries[token_hash]
                return None
            return found[0]

    def put(self, token_hash: bytes, principal: Principal) -> None:
        if self._ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[token_hash] = (principal, self._clock() + self._ttl_s)
