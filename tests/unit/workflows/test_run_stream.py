"""Streaming a run's events (shared/workflows/run_stream.py, run_event_data.py): the engine's and
the interpreter's events become the wire's types with their stream ids; a follower resumes after
any id with nothing lost or repeated, ends at ``done``, closes the stream of a run that ended
silently, and gives up at its bound. Over the in-process event stream (the cache port's
implementation held to the Redis contract)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from shared.cache.memory import MemoryEventStream
from shared.cache.ports import StreamEvent
from shared.workflows.definition import Node
from shared.workflows.engine.runner import NodeRunResult, finished_event
from shared.workflows.ports import RunRef
from shared.workflows.run_event_data import EVENT_MODELS, PREVIEW_CHARS, summarize_outputs, wire_event
from shared.workflows.run_events import StreamRunEvents, stream_name
from shared.workflows.run_stream import Follow, RunFollower

RUN = RunRef("8f0c9a52-7a54-4a5e-9a38-2f4f1c2d0001", "0b6f5d1e-3c33-4d7b-8a0e-6b1b5d3f0002")
RUN_ID = RUN.run_id


class Run:
    """A run's stream and status as a follower sees them."""

    def __init__(self) -> None:
        self.stream = MemoryEventStream()
        self.events = StreamRunEvents(self.stream, ttl_s=60)
        self.status: str | None = "running"
        self.closed: list[str] = []

    def emit(self, event_type: str, **data: Any) -> None:
        self.events.emit(RUN, event_type, data)

    def close(self, status: str) -> StreamEvent:
        self.closed.append(status)
        event_id = self.stream.append(stream_name(RUN_ID), "done", {"status": status})
        return StreamEvent(event_id, "done", {"status": status})

    def follower(self) -> RunFollower:
        return RunFollower(self.stream, lambda: self.status, self.close)

    def follow(self, after: str | None = None, *, block_ms: int = 20, follow_s: float = 5.0) -> list[StreamEvent]:
        follower = self.follower()
        return [event for batch in follower.follow(RUN_ID, after, follower.first(RUN_ID, after),
                                                   Follow(block_ms, follow_s)) for event in batch]

    def emit_run(self, nodes: int = 3) -> None:
        self.emit("workflow.started", run_id=RUN_ID, workflow_id="w", version=1)
        for index in range(nodes):
            node = f"n{index}"
            self.emit("node.started", node_id=node, node_type="llm", title=node)
            for piece in ("Hel", "lo"):
                self.emit("node.delta", node_id=node, text=piece)
            self.emit("node.finished", node_id=node, node_type="llm", status="succeeded", handle="source",
                      elapsed_ms=3, attempts=1, tokens=7, error=None, outputs={"text": "Hello"},
                      outputs_truncated=[], finished_at="2026-01-01T00:00:00+00:00")
        self.emit("workflow.finished", status="succeeded", outputs={"out": "Hello"}, outputs_truncated=[])
        self.emit("done", status="succeeded")


def test_engine_and_interpreter_names_map_to_the_wire_types_with_their_ids() -> None:
    cases = {
        "node_started": ("node.started", {"node_id": "a", "node_type": "llm", "title": "A", "container_id": "it",
                                          "index": 2}),
        "text_chunk": ("node.delta", {"node_id": "a", "text": "x"}),
        "iteration.next": ("iteration.next", {"node_id": "it", "index": 0}),
        "loop.next": ("loop.next", {"node_id": "lp", "index": 4}),
        "workflow.paused": ("workflow.paused", {"node_id": "ask", "form": {"content": "Ok?", "actions": [], "fields": [
            {"name": "ok", "label": "", "type": "boolean", "required": True, "default": None, "options": [],
             "max_length": None}]}}),
        "workflow.resumed": ("workflow.resumed", {"node_id": "ask"}),
        "error": ("error", {"code": "node_failed", "message": "boom", "node_id": "a"}),
        "done": ("done", {"status": "failed"}),
    }
    for stored, (wire, data) in cases.items():
        event = wire_event(StreamEvent("5-1", stored, {**data, "internal_only": True}))
        assert event is not None and event.id == "5-1" and event.type == wire, stored
        assert "internal_only" not in event.data
        assert {key: event.data[key] for key in data} == data
    assert set(EVENT_MODELS) == {wire for wire, _ in cases.values()} | {"workflow.started", "node.finished",
                                                                          "workflow.finished"}
    # A draft run's version is null on the wire, as in its record.
    started = wire_event(StreamEvent("5-0", "workflow.started", {"run_id": "r", "workflow_id": "w",
                                                                 "version": "draft"}))
    assert started is not None and started.data["version"] is None
    # An event type the wire does not know is not streamed; data its model refuses is sent as stored.
    assert wire_event(StreamEvent("5-2", "workflow.checkpoint", {})) is None
    odd = wire_event(StreamEvent("5-3", "node.delta", {"text": 3}))
    assert odd is not None and odd.data == {"text": 3}


def test_a_settled_node_s_event_carries_a_preview_of_its_outputs_and_its_end() -> None:
    node = Node.model_validate({"id": "big", "type": "code", "config": {}})
    long_text = "é" * (PREVIEW_CHARS * 3)
    result = NodeRunResult("succeeded", {"text": long_text, "n": 4, "rows": list(range(500)), "obj": {"k": "v" * 400}},
                           "source", {}, None, 1, 12, 30, ())
    before = time.time()
    data = finished_event(node, result)
    event = wire_event(StreamEvent("9-0", "node_finished", data))
    assert event is not None and event.type == "node.finished"
    assert event.data["outputs"]["n"] == 4 and event.data["outputs"]["text"] == long_text[:PREVIEW_CHARS]
    assert event.data["outputs"]["rows"].startswith("<list of 500 items")
    assert event.data["outputs"]["obj"].startswith("<object of 1 keys")
    assert sorted(event.data["outputs_truncated"]) == ["obj", "rows", "text"]
    assert event.data["tokens"] == 12 and event.data["elapsed_ms"] == 30 and event.data["status"] == "succeeded"
    assert datetime.fromisoformat(event.data["finished_at"]).timestamp() >= before - 0.001
    many, cut = summarize_outputs({f"k{index:03}": index for index in range(60)})
    assert len(many) == 50 and cut == [f"k{index:03}" for index in range(50, 60)]


def test_a_finished_run_replays_whole_and_resuming_anywhere_loses_and_repeats_nothing() -> None:
    run = Run()
    run.emit_run()
    run.status = "succeeded"
    everything = run.follow()
    assert [event.type for event in everything][:3] == ["workflow.started", "node.started", "node.delta"]
    assert everything[-2].type == "workflow.finished" and everything[-1].type == "done"
    ids = [event.id for event in everything]
    assert len(ids) == len(set(ids)) == 1 + 3 * 4 + 2
    for cut in range(len(everything) - 1):
        rest = run.follow(everything[cut].id)
        assert [event.id for event in rest] == ids[cut + 1:], cut
    assert run.closed == [], "a stream that has its done is not closed again"
    # After the last event of a finished run: a new done (an SSE client would otherwise
    # reconnect with the same id for ever), never an old event again.
    (after_done,) = run.follow(everything[-1].id, block_ms=5)
    assert after_done.type == "done" and after_done.id not in ids and run.closed == ["succeeded"]
    # That closing done (or anything a late writer appends) never makes a replay repeat done.
    run.emit("workflow.paused", node_id="late", form={})
    assert [event.id for event in run.follow()] == ids
    assert [event.id for event in run.follow(everything[-2].id)] == ids[-1:]


def test_a_live_run_is_followed_until_done_with_heartbeat_slots_between() -> None:
    run = Run()
    run.emit("workflow.started", run_id=RUN_ID, workflow_id="w", version=None)
    follower = run.follower()
    batches = follower.follow(RUN_ID, None, follower.first(RUN_ID, None), Follow(block_ms=30, follow_s=5))
    assert [event.type for event in next(batches)] == ["workflow.started"]
    assert next(batches) == []  # nothing for a heartbeat interval: the slot for a heartbeat

    def finish() -> None:
        time.sleep(0.05)
        run.emit("node.started", node_id="a", node_type="template", title="A")
        run.emit("done", status="succeeded")

    threading.Thread(target=finish).start()
    rest = [event.type for batch in batches for event in batch]
    assert rest == ["node.started", "done"]


def test_a_run_that_ended_without_done_reaching_its_stream_is_closed() -> None:
    run = Run()
    run.emit("workflow.started", run_id=RUN_ID, workflow_id="w", version=1)
    run.status = "failed"
    events = run.follow(block_ms=5)
    assert [event.type for event in events] == ["workflow.started", "done"]
    assert events[-1].data == {"status": "failed"} and run.closed == ["failed"]
    # The closing done is in the stream: the next follower stops there.
    assert [event.type for event in run.follow(events[0].id)] == ["done"]


def test_a_follower_gives_up_at_its_bound_without_done_and_a_resume_carries_on() -> None:
    run = Run()
    run.emit("workflow.started", run_id=RUN_ID, workflow_id="w", version=1)
    run.status = "paused"  # waiting for a person: not over
    began = time.monotonic()
    first = run.follow(block_ms=20, follow_s=0.2)
    assert 0.15 <= time.monotonic() - began < 2
    assert [event.type for event in first] == ["workflow.started"] and run.closed == []
    run.emit("workflow.paused", node_id="ask", form={"fields": []})
    run.emit("workflow.resumed", node_id="ask")
    run.emit("done", status="succeeded")
    assert [event.type for event in run.follow(first[-1].id)] == ["workflow.paused", "workflow.resumed", "done"]


def test_events_without_a_wire_type_still_move_the_position() -> None:
    run = Run()
    run.emit("node.started", node_id="a", node_type="start", title="")
    run.emit("workflow.checkpoint")
    run.emit("done", status="succeeded")
    events = run.follow()
    assert [event.type for event in events] == ["node.started", "done"]
    # Resuming after the last event a client saw skips the internal one, never re-sends it.
    assert [event.type for event in run.follow(events[0].id)] == ["done"]
