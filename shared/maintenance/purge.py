"""Retention: soft-deleted rows are purged after ``retention_days`` by a scheduled state
machine that walks the registered tables in foreign-key order, in batches."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from shared.db.database import Database


class PurgeItem(BaseModel):
    """One Map item of the purge state machine (identifiers only, docs/architecture.md §6.3)."""

    table: str = Field(pattern=r"^[a-z_]+$")
    cutoff: datetime
    batch_size: int = Field(ge=1, le=10_000)


class PurgeResult(BaseModel):
    table: str
    cutoff: datetime
    batch_size: int
    deleted: int
    done: bool


class PurgeService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def plan(self, now: datetime, retention_days: int, batch_size: int) -> list[PurgeItem]:
        cutoff = now - timedelta(days=retention_days)
        with self._db.transaction() as conn:
            tables = [row[0] for row in conn.execute("SELECT purge_tables()").fetchall()]
        return [PurgeItem(table=t, cutoff=cutoff, batch_size=batch_size) for t in tables]

    def purge(self, item: PurgeItem, time_left_ms: Callable[[], int], reserve_ms: int = 5_000) -> PurgeResult:
        """Delete batches until the table is clean or the invocation's time runs short;
        the state machine calls again while ``done`` is false."""
        deleted = 0
        while True:
            with self._db.transaction() as conn:
                row = conn.execute("SELECT purge_soft_deleted(%s, %s, %s)",
                                   (item.table, item.cutoff, item.batch_size)).fetchone()
            count = int(row[0]) if row else 0
            deleted += count
            if count < item.batch_size:
                return PurgeResult(**item.model_dump(), deleted=deleted, done=True)
            if time_left_ms() < reserve_ms:
                return PurgeResult(**item.model_dump(), deleted=deleted, done=False)


def start_purge(sfn: Any, state_machine_arn: str, items: list[PurgeItem], now: datetime) -> str:
    """Start today's purge execution. The name is the date, so a redelivered schedule
    event starts nothing new."""
    name = f"purge-{now:%Y-%m-%d}"
    payload = json.dumps({"items": [item.model_dump(mode="json") for item in items]})
    try:
        response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)
        return str(response["executionArn"])
    except sfn.exceptions.ExecutionAlreadyExists:
        arn = state_machine_arn.replace(":stateMachine:", ":execution:")
        return f"{arn}:{name}"


def utc_now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)
