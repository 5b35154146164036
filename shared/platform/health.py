"""Liveness and database reachability."""

from __future__ import annotations

import time

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
