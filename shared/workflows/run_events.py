"""A run's events in the cache's event stream (Redis in AWS): what the interpreter and the
engine emit, read by a sync caller waiting for the result and by anyone following the run."""

from __future__ import annotations

from typing import Any

from shared.cache.ports import EventStream
from shared.workflows.ports import RunRef

# The events that end a run's stream.
FINAL_EVENT = "done"


def stream_name(run_id: str) -> str:
    # One stream per run; the cache adapter puts the whole name in one hash tag (cluster mode).
    return f"workflow-run:{run_id}"


class StreamRunEvents:
    def __init__(self, stream: EventStream, ttl_s: int) -> None:
        self._stream = stream
        self._ttl_s = ttl_s

    def emit(self, run: RunRef, event_type: str, data: dict[str, Any]) -> None:
        self._stream.append(stream_name(run.run_id), event_type, data, ttl_s=self._ttl_s)
