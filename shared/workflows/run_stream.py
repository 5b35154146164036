"""Following a workflow run's events for a streaming client (docs/adr/0035-workflow-run-streaming.md):
the stored events after the client's position (``Last-Event-ID``), then the new ones as they
come, as the wire's types (:func:`~shared.workflows.run_event_data.wire_event`), until ``done``.

Positions are the run stream's own ids (Redis stream ids, ``<ms>-<seq>``): a client that resumes
after id X gets exactly the events after X, none twice, none missed. The run goes on in Step
Functions whoever follows it; a follower only reads. It ends at ``done``; when the run ended
without one reaching the stream it closes the stream itself; it gives up after its time bound
(the client resumes where it was).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shared.cache.ports import EventStream, StreamEvent
from shared.workflows.ports import FINAL_STATUSES
from shared.workflows.run_event_data import wire_event
from shared.workflows.run_events import FINAL_EVENT, stream_name

# Events read per call.
READ_COUNT = 200
# Idle reads (heartbeats) between two checks of the run's status.
STATUS_EVERY = 3


@dataclass(frozen=True)
class Follow:
    """One follower's bounds: how long a read waits (the heartbeat interval) and how long it
    follows in all."""

    block_ms: int
    follow_s: float


class RunFollower:
    def __init__(self, events: EventStream, status: Callable[[], str | None], close: Callable[[str], StreamEvent],
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        # ``status``: the run's status now (None: gone); ``close``: append ``done`` with a final
        # status to the run's stream and return it (with its id).
        self._events = events
        self._status = status
        self._close = close
        self._clock = clock

    def first(self, run_id: str, after_id: str | None) -> list[StreamEvent]:
        """The stored events after ``after_id`` (raw, as the stream holds them)."""
        return self._events.read(stream_name(run_id), after_id, count=READ_COUNT, block_ms=0)

    def follow(self, run_id: str, after_id: str | None, first: list[StreamEvent],
               bounds: Follow) -> Iterator[list[StreamEvent]]:
        """Batches of wire events after ``after_id`` (``first`` read already), an empty batch
        for each read that waited in vain (time for a heartbeat), until ``done`` or the bound."""
        key = stream_name(run_id)
        deadline = self._clock() + bounds.follow_s
        batch, last, idle = first, after_id, 0
        while True:
            if batch:
                last = batch[-1].id
                ended = next((index for index, event in enumerate(batch) if event.type == FINAL_EVENT), None)
                if ended is not None:
                    # Nothing after the first ``done`` is sent: a ``done`` closing a reconnect
                    # past the end (and anything a late writer appended) is never a second one.
                    yield _wire(batch[:ended + 1])
                    return
                yield _wire(batch)
                idle = 0
            else:
                yield []
                idle += 1
                if idle % STATUS_EVERY == 0:
                    status = self._status()
                    if status is None or status in FINAL_STATUSES:
                        # Over, and its stream silent: whatever it still holds, then ``done``.
                        tail = self._events.read(key, last, count=READ_COUNT, block_ms=0)
                        ended = any(event.type == FINAL_EVENT for event in tail)
                        yield _wire(tail if ended else [*tail, self._close(status or "failed")])
                        return
            remaining_ms = int((deadline - self._clock()) * 1000)
            if remaining_ms <= 0:
                return
            batch = self._events.read(key, last, count=READ_COUNT, block_ms=min(bounds.block_ms, remaining_ms))


def _wire(batch: list[StreamEvent]) -> list[StreamEvent]:
    return [wired for event in batch if (wired := wire_event(event)) is not None]
