"""The per-container cache of resolved tokens (functions that authenticate themselves)."""

from __future__ import annotations

import uuid

from shared.auth.principal import Principal
from shared.auth.principal_cache import MAX_ENTRIES, PrincipalCache


def principal() -> Principal:
    return Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=uuid.uuid4(), user_id=uuid.uuid4(),
                     role="owner")


def test_entries_live_for_the_ttl() -> None:
    now = [100.0]
    cache = PrincipalCache(30, clock=lambda: now[0])
    who = principal()
    cache.put(b"h1", who)
    assert cache.get(b"h1") is who and cache.get(b"h2") is None
    now[0] += 29.9
    assert cache.get(b"h1") is who
    now[0] += 0.2
    assert cache.get(b"h1") is None


def test_ttl_zero_disables_it_and_size_is_bounded() -> None:
    off = PrincipalCache(0)
    off.put(b"h", principal())
    assert off.get(b"h") is None
    cache = PrincipalCache(60)
    for n in range(MAX_ENTRIES + 1):
        cache.put(n.to_bytes(4, "big"), principal())
    assert cache.get((MAX_ENTRIES).to_bytes(4, "big")) is not None
    assert cache.get((0).to_bytes(4, "big")) is None  # cleared when full
