"""Liveness and database reachability."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pydantic import BaseModel

from shared.db.database import Database
from shared.errors import Unavailable


class Health(BaseModel):
    status: str
    database: str
    database_latency_ms: float


def check_health(db: Database) -> Health:
    started = time.perf_counter()
    try:
        with db.transaction() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        # Reported to the caller (and load balancers) as 503; the cause goes to the log.
        raise Unavailable("Database is unreachable", code="sys_database_unreachable") from exc
    return Health(status="ok", database="ok", database_latency_ms=round((time.perf_counter() - started) * 1000, 2))


# Load balancers and uptime probes call /health often; the answer may be this old, so the
# database sees at most one check per container per period (docs/adr/0047).
HEALTH_CACHE_S = 5.0


class HealthCache:
    """The container's last health answer, healthy or not, kept for ``ttl_s``."""

    def __init__(self, ttl_s: float = HEALTH_CACHE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._answer: tuple[float, Health | Unavailable] | None = None

    def check(self, db: Database) -> Health:
        with self._lock:
            now = self._clock()
            if self._answer is None or self._answer[0] <= now:
                try:
                    answer: Health | Unavailable = check_health(db)
                except Unavailable as exc:
                    answer = exc
                self._answer = (now + self._ttl_s, answer)
            cached = self._answer[1]
        if isinstance(cached, Unavailable):
            raise cached.with_traceback(None)
        return cached
