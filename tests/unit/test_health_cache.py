"""/health reaches the database at most once per container every few seconds (docs/adr/0047)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from shared.errors import Unavailable
from shared.platform.health import HEALTH_CACHE_S, HealthCache


class CountingDatabase:
    """A Database port that counts transactions and can be taken down."""

    def __init__(self) -> None:
        self.transactions = 0
        self.down = False

    @contextmanager
    def transaction(self, tenant_id: Any = None) -> Iterator[Any]:
        self.transactions += 1
        if self.down:
            raise OSError("connection refused")
        yield self

    def execute(self, sql: str) -> None:
        assert sql == "SELECT 1"

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_health_is_checked_once_per_period() -> None:
    db, clock = CountingDatabase(), Clock()
    cache = HealthCache(clock=clock)
    assert HEALTH_CACHE_S == 5.0
    first = cache.check(db)
    assert first.database == "ok"
    for _ in range(50):
        assert cache.check(db) == first
    assert db.transactions == 1
    clock.now += HEALTH_CACHE_S - 0.01
    cache.check(db)
    assert db.transactions == 1
    clock.now += 0.02
    cache.check(db)
    assert db.transactions == 2


def test_an_unreachable_database_is_reported_and_also_kept_briefly() -> None:
    db, clock = CountingDatabase(), Clock()
    cache = HealthCache(clock=clock)
    db.down = True
    for _ in range(3):
        with pytest.raises(Unavailable) as err:
            cache.check(db)
        assert err.value.code == "sys_database_unreachable"
    assert db.transactions == 1
    db.down = False
    clock.now += HEALTH_CACHE_S
    assert cache.check(db).status == "ok"
    assert db.transactions == 2
