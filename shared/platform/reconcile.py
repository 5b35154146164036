"""Start-up reconciliation: work left in a running state by a stopped runtime is marked
failed, with a reason the user sees, instead of hanging forever (docs/architecture.md §3.2)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

LOCAL_RESTART_REASON = "local runtime restarted"


def reconcile_interrupted_work(admin_conninfo: str, reason: str = LOCAL_RESTART_REASON) -> dict[str, int]:
    import psycopg

    with psycopg.connect(admin_conninfo, autocommit=True, prepare_threshold=None) as conn:
        rows = conn.execute("SELECT table_name, failed FROM reconcile_interrupted_work(%s)", (reason,)).fetchall()
    counts = {str(table): int(failed) for table, failed in rows}
    for table, failed in counts.items():
        if failed:
            logger.warning("marked interrupted work failed", extra={"table": table, "failed": failed})
    return counts
