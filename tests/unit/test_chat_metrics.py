"""Chat turn metrics: one EMF record per turn when metrics are on, nothing when they are off."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest

from shared.chat.metrics import record_turn
from shared.config import reset_settings
from shared.conversations.api import MessageOut


def answer(status: str, latency: dict[str, int]) -> MessageOut:
    now = datetime.datetime.now(datetime.UTC)
    return MessageOut(id=uuid.uuid4(), conversation_id=uuid.uuid4(), position=2, role="assistant", reply_to=None,
                      content="x", status=status, agent_id=uuid.uuid4(), agent_version=1,  # type: ignore[arg-type]
                      references=[], rewritten_query=None, model="m", stop_reason="stop", usage=None,
                      latency=latency, context=None, error=None, feedback=None, created_at=now, updated_at=now,
                      finished_at=now)


def test_one_record_per_turn_with_status(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    reset_settings()
    try:
        record_turn(answer("cancelled", {"first_token_ms": 12, "total_ms": 40}))
    finally:
        monkeypatch.undo()
        reset_settings()
    record = json.loads(capsys.readouterr().out.strip())
    assert record["status"] == "cancelled" and record["ChatTurns"] == [1.0]
    assert record["ChatFirstTokenMs"] == [12.0] and record["ChatTurnMs"] == [40.0]
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Stratus"


def test_nothing_when_metrics_are_off(capsys: pytest.CaptureFixture[str]) -> None:
    record_turn(answer("completed", {"total_ms": 5}))  # the test environment turns metrics off
    assert capsys.readouterr().out == ""
