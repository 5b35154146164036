"""The Coze workflow facade's pure parts (shared/facades/coze/workflows.py): a run's events as
Coze's stream_run events (with the ``id:`` lines cozepy parses), a chatflow's run as /v3/chat's
events, interrupt event ids, resume data and run statuses."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shared.cache.ports import StreamEvent
from shared.errors import ValidationFailed
from shared.facades.coze.workflows import (
    CozeRunStream,
    CozeWorkflowChatStream,
    WorkflowChat,
    event_id,
    history_status,
    parse_event_id,
    until_paused,
)

RUN = str(uuid.uuid4())


def _events(frames: list[bytes]) -> list[dict[str, str]]:
    """Frames as cozepy's Stream reads them: each field once per event, blank lines skipped."""
    found = []
    for block in b"".join(frames).decode().split("\n\n"):
        if block.strip():
            found.append(dict(line.split(":", 1) for line in block.split("\n")))
    return found


def _run(stream: Any, *events: tuple[str, dict[str, Any]], first_id: int = 1) -> list[bytes]:
    frames: list[bytes] = []
    for number, (kind, data) in enumerate(events, first_id):
        frames += stream.frames(StreamEvent(f"{number}-0", kind, data))
    return frames


def test_a_succeeded_run_is_the_end_message_then_done_with_counted_ids() -> None:
    frames = _run(CozeRunStream(),
                  ("workflow.started", {"run_id": RUN}),
                  ("node.started", {"node_id": "llm", "node_type": "llm", "title": "Model"}),
                  ("node.delta", {"node_id": "llm", "text": "Pa"}),
                  ("node.finished", {"node_id": "llm", "status": "succeeded", "tokens": 12}),
                  ("node.started", {"node_id": "end", "node_type": "end", "title": "Result"}),
                  ("node.finished", {"node_id": "end", "status": "succeeded", "tokens": 0}),
                  ("workflow.finished", {"status": "succeeded", "outputs": {"answer": "Paris.", "n": 1}}),
                  ("done", {"status": "succeeded"}))
    events = _events(frames)
    assert [(e["id"], e["event"]) for e in events] == [("0", "Message"), ("1", "Done")]
    message = json.loads(events[0]["data"])
    assert json.loads(message["content"]) == {"answer": "Paris.", "n": 1}
    assert message["node_title"] == "Result" and message["node_is_finish"] is True and message["node_seq_id"] == "0"
    assert message["usage"] == {"token_count": 12, "output_count": 0, "input_count": 0}


def test_a_failed_run_is_one_error_with_coze_s_code() -> None:
    error = {"code": "model_unavailable", "message": "Node llm failed: down", "node_id": "llm"}
    events = _events(_run(CozeRunStream(), ("workflow.finished", {"status": "failed", "error": error}),
                          ("error", error), ("done", {"status": "failed"})))
    assert [e["event"] for e in events] == ["Error", "Done"]
    assert json.loads(events[0]["data"]) == {"error_code": 4013, "error_message": "Node llm failed: down"}
    other = _events(_run(CozeRunStream(), ("error", {"code": "code_timeout", "message": "slow"})))
    assert json.loads(other[0]["data"])["error_code"] == 5000


def test_a_pause_is_an_interrupt_naming_the_run_its_position_and_node() -> None:
    stream = CozeRunStream()
    events = _events(_run(stream, ("node.started", {"node_id": "review", "node_type": "human_input",
                                                    "title": "Review"}),
                          ("workflow.paused", {"node_id": "review", "run_id": RUN, "form": {}})))
    assert [e["event"] for e in events] == ["Interrupt"]
    data = json.loads(events[0]["data"])
    assert data["node_title"] == "Review" and data["interrupt_data"]["type"] == 5
    assert parse_event_id(data["interrupt_data"]["event_id"]) == (uuid.UUID(RUN), "2-0", "review")


# A position that is no stream id is refused here, before the pause is answered: found only when
# following the resumed run, the answer would be recorded and the client's stream end empty.
@pytest.mark.parametrize("bad", ["", "x/y/z", f"{RUN}/1-0", f"{RUN}//node", f"{RUN}/1-0/a/b", f"{RUN}/later/node",
                                 f"{RUN}/1-0-0/node", f"{RUN}/{2**64}-0/node"])
def test_a_malformed_event_id_is_a_validation_error(bad: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_event_id(bad)


def test_event_ids_round_trip() -> None:
    assert parse_event_id(event_id(RUN, "17-3", "ask_1")) == (uuid.UUID(RUN), "17-3", "ask_1")


def test_a_stream_ends_at_its_pause() -> None:
    def batch(*kinds: str) -> list[StreamEvent]:
        return [StreamEvent(f"{i}-0", kind, {}) for i, kind in enumerate(kinds)]

    batches = [batch("workflow.started"), batch("node.finished", "workflow.paused", "workflow.resumed"),
               batch("done")]
    assert [[e.type for e in b] for b in until_paused(iter(batches))] == [
        ["workflow.started"], ["node.finished", "workflow.paused"]]


def test_a_chatflow_run_is_coze_s_chat_events() -> None:
    chat = WorkflowChat(RUN, "wf", 1_700_000_000)
    frames = _run(CozeWorkflowChatStream(chat),
                  ("workflow.started", {"run_id": RUN}),
                  ("node.finished", {"node_id": "llm", "tokens": 23}),
                  ("workflow.finished", {"status": "succeeded", "outputs": {"answer": "Sure: Paris."}}),
                  ("done", {"status": "succeeded"}))
    text = b"".join(frames).decode()
    assert "id:" not in text
    events = _events(frames)
    assert [e["event"] for e in events] == ["conversation.chat.created", "conversation.chat.in_progress",
                                            "conversation.message.delta", "conversation.message.completed",
                                            "conversation.chat.completed", "done"]
    delta = json.loads(events[2]["data"])
    assert delta["content"] == "Sure: Paris." and delta["chat_id"] == RUN and delta["type"] == "answer"
    completed = json.loads(events[4]["data"])
    assert completed["status"] == "completed" and completed["usage"]["token_count"] == 23
    assert events[5]["data"] == '"[DONE]"'


def test_a_failed_chatflow_run_is_chat_failed_once() -> None:
    error = {"code": "model_unavailable", "message": "down"}
    events = _events(_run(CozeWorkflowChatStream(WorkflowChat(RUN, "wf", 0)),
                          ("workflow.started", {}), ("workflow.finished", {"status": "failed", "error": error}),
                          ("error", error), ("done", {})))
    assert [e["event"] for e in events][2:] == ["conversation.chat.failed", "done"]
    assert json.loads(events[2]["data"])["last_error"] == {"code": 4013, "msg": "down"}


def test_a_chatflow_paused_for_input_is_chat_failed_saying_how_to_answer_then_done() -> None:
    # The stream ends at the pause: without these the client saw in_progress, then nothing.
    events = _events(_run(CozeWorkflowChatStream(WorkflowChat(RUN, "wf", 0)),
                          ("workflow.started", {}), ("node.started", {"node_id": "ask", "title": "Ask"}),
                          ("workflow.paused", {"node_id": "ask", "run_id": RUN})))
    assert [e["event"] for e in events][2:] == ["conversation.chat.failed", "done"]
    error = json.loads(events[2]["data"])["last_error"]
    assert error["code"] == 4000
    assert "'ask'" in error["msg"] and f"/api/v1/workflow-runs/{RUN}/resume" in error["msg"]


@pytest.mark.parametrize(("status", "coze"), [("succeeded", "Success"), ("failed", "Fail"), ("cancelled", "Fail"),
                                              ("running", "Running"), ("pending", "Running"), ("paused", "Running")])
def test_run_statuses_are_coze_s(status: str, coze: str) -> None:
    assert history_status(status) == coze


def _paused(*fields: str, actions: bool = False) -> Any:
    from types import SimpleNamespace

    form = SimpleNamespace(fields=[SimpleNamespace(name=name) for name in fields],
                           actions=[SimpleNamespace(id="go")] if actions else [])
    return SimpleNamespace(pause=SimpleNamespace(form=form))


def test_resume_data_is_the_form_s_answer() -> None:
    from shared.facades.coze.workflows import CozeWorkflows

    answer = CozeWorkflows._answer
    assert answer(_paused("verdict", "score"), '{"verdict": "ship", "score": 2}') == ({"verdict": "ship",
                                                                                       "score": 2}, None)
    assert answer(_paused("note"), "looks good") == ({"note": "looks good"}, None)
    assert answer(_paused("note", actions=True), '{"note": "x", "action": "go"}') == ({"note": "x"}, "go")
    # A field named action stays a field.
    assert answer(_paused("action", actions=True), '{"action": "y"}') == ({"action": "y"}, None)
    with pytest.raises(ValidationFailed, match="verdict, score"):
        answer(_paused("verdict", "score"), "just text")
