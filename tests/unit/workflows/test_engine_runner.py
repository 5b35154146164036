"""The node runner: retry then success, retries exhausted, the default-value and failure-branch
strategies, the timeout per attempt, programming errors and infrastructure failures, events.
Knowledge retrieval is the node under test, over a scripted Retriever of our own contract."""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
import pytest

from shared.errors import StratusError, Unavailable
from shared.workflows.engine.runner import NodeRunner
from tests.support.engine_runs import ScriptedRetriever, document, drive, passage, ports, sleeper

KB = "0b6f1c8e-5a57-4c1e-9a43-2b8f3f9e1a11"


class Busy(StratusError):
    code, status, default_message = "knowledge_search_busy", 503, "The search index is busy"


def retrieval_doc(*, retry: dict[str, Any] | None = None, strategy: str = "fail", default: dict[str, Any] | None = None,
                  timeout_s: int | None = None, branch: bool = False, config: dict[str, Any] | None = None):
    node: dict[str, Any] = {"id": "kr", "type": "knowledge_retrieval", "error_strategy": strategy,
                            "config": config or {"query_variable_selector": ["start", "q"], "knowledge_base_ids": [KB]}}
    if retry:
        node["retry"] = retry
    if default is not None:
        node["default_value"] = default
    if timeout_s is not None:
        node["timeout_s"] = timeout_s
    nodes = [{"id": "start", "type": "start", "config": {"variables": [{"variable": "q"}]}}, node,
             {"id": "end", "type": "end", "config": {"outputs": [
                 {"variable": "result", "value_selector": ["kr", "result"]},
                 {"variable": "error", "value_selector": ["kr", "error_type"]}]}}]
    edges: list[tuple[str, ...]] = [("start", "kr"), ("kr", "end")]
    if branch:
        nodes.append({"id": "recover", "type": "end", "config": {"outputs": [
            {"variable": "why", "value_selector": ["kr", "error_message"]},
            {"variable": "code", "value_selector": ["kr", "error_type"]}]}})
        edges.append(("kr", "fail-branch", "recover"))
    return document(nodes, edges)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_a_failed_attempt_is_retried_after_the_interval_and_then_succeeds() -> None:
    retriever = ScriptedRetriever(Busy(), [passage("Refunds take 5 days.")])
    sleeps = Sleeps()
    run = drive(retrieval_doc(retry={"max_attempts": 3, "interval_ms": 250}),
                NodeRunner(ports(retriever=retriever), sleep=sleeps), {"q": "refunds?"})
    result = run.results["kr"]
    assert run.status == "succeeded"
    assert (result.status, result.attempts, result.error) == ("succeeded", 2, None)
    assert sleeps == [0.25]
    assert len(retriever.queries) == 2
    assert run.outputs["result"][0]["content"] == "Refunds take 5 days."
    assert result.inputs == {"query": "refunds?"}


def test_a_success_is_never_retried() -> None:
    retriever = ScriptedRetriever([passage("x")])
    sleeps = Sleeps()
    run = drive(retrieval_doc(retry={"max_attempts": 5, "interval_ms": 10}),
                NodeRunner(ports(retriever=retriever), sleep=sleeps), {"q": "x"})
    assert run.results["kr"].attempts == 1 and sleeps == [] and len(retriever.queries) == 1


def test_when_every_attempt_fails_the_node_and_the_run_fail_with_its_error() -> None:
    retriever = ScriptedRetriever(Busy("still busy"))
    sleeps = Sleeps()
    run = drive(retrieval_doc(retry={"max_attempts": 3, "interval_ms": 100}),
                NodeRunner(ports(retriever=retriever), sleep=sleeps), {"q": "x"})
    result = run.results["kr"]
    assert run.status == "failed" and result.status == "failed"
    assert result.attempts == 3 and sleeps == [0.1, 0.1]
    assert result.error is not None and (result.error.code, result.error.message) == ("knowledge_search_busy",
                                                                                      "still busy")
    assert "end" not in run.results


def test_default_value_succeeds_with_the_defaults_and_the_error() -> None:
    retriever = ScriptedRetriever(Busy("down for maintenance"))
    default = {"result": [{"content": "no knowledge today"}]}
    run = drive(retrieval_doc(strategy="default_value", default=default), NodeRunner(ports(retriever=retriever)),
                {"q": "x"})
    result = run.results["kr"]
    assert run.status == "succeeded"
    assert (result.status, result.handle) == ("succeeded", "source")
    assert result.outputs == {"result": [{"content": "no knowledge today"}], "error_message": "down for maintenance",
                              "error_type": "knowledge_search_busy"}
    assert result.error is not None and result.error.code == "knowledge_search_busy"
    assert run.outputs == {"result": [{"content": "no knowledge today"}], "error": "knowledge_search_busy"}


def test_a_failure_branch_takes_over_from_the_success_path() -> None:
    run = drive(retrieval_doc(strategy="fail_branch", branch=True),
                NodeRunner(ports(retriever=ScriptedRetriever(Busy("no index")))), {"q": "x"})
    result = run.results["kr"]
    assert run.status == "succeeded"
    assert (result.status, result.handle) == ("succeeded", "fail-branch")
    assert result.outputs == {"error_message": "no index", "error_type": "knowledge_search_busy"}
    assert run.skipped() == {"end"}
    assert run.outputs == {"why": "no index", "code": "knowledge_search_busy"}


def test_without_a_failure_the_failure_branch_is_skipped() -> None:
    run = drive(retrieval_doc(strategy="fail_branch", branch=True),
                NodeRunner(ports(retriever=ScriptedRetriever([passage("fine")]))), {"q": "x"})
    assert run.results["kr"].handle == "source"
    assert run.skipped() == {"recover"}
    assert run.outputs["result"][0]["content"] == "fine"


def test_an_attempt_past_its_timeout_fails_the_node_without_waiting_for_it() -> None:
    retriever = ScriptedRetriever(sleeper(3.0, [passage("too late")]))
    began = time.monotonic()
    run = drive(retrieval_doc(timeout_s=1, strategy="default_value", default={"result": []}),
                NodeRunner(ports(retriever=retriever)), {"q": "x"})
    waited = time.monotonic() - began
    result = run.results["kr"]
    assert 1.0 <= waited < 2.5
    assert result.error is not None and result.error.code == "node_timeout"
    assert "1 s" in result.error.message
    assert result.outputs["result"] == [] and result.inputs == {"query": "x"}
    assert result.elapsed_ms >= 1000


def test_each_attempt_gets_the_whole_timeout() -> None:
    retriever = ScriptedRetriever(sleeper(1.5), [passage("second time lucky")])
    run = drive(retrieval_doc(timeout_s=1, retry={"max_attempts": 2, "interval_ms": 0}),
                NodeRunner(ports(retriever=retriever)), {"q": "x"})
    assert run.results["kr"].attempts == 2
    assert run.outputs["result"][0]["content"] == "second time lucky"


def test_a_programming_error_fails_the_node_and_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    retriever = ScriptedRetriever(KeyError("segment"))
    with caplog.at_level(logging.ERROR, logger="shared.workflows.engine.runner"):
        run = drive(retrieval_doc(strategy="default_value", default={"result": []}),
                    NodeRunner(ports(retriever=retriever)), {"q": "x"})
    error = run.results["kr"].error
    assert error is not None and error.code == "node_internal_error"
    assert "KeyError" in error.message and "segment" not in error.message
    [record] = [r for r in caplog.records if r.name == "shared.workflows.engine.runner"]
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert record.node_id == "kr"  # type: ignore[attr-defined]


@pytest.mark.parametrize("failure", [psycopg.OperationalError("connection refused"),
                                     Unavailable("Database is unreachable", code="sys_database_unreachable")],
                         ids=["database", "unavailable"])
def test_infrastructure_failures_propagate_for_the_step_to_be_retried(failure: Exception) -> None:
    retriever = ScriptedRetriever(failure)
    with pytest.raises(type(failure)) as raised:
        drive(retrieval_doc(strategy="default_value", default={"result": []},
                            retry={"max_attempts": 3, "interval_ms": 0}),
              NodeRunner(ports(retriever=retriever)), {"q": "x"})
    assert raised.value is failure
    assert len(retriever.queries) == 1  # not retried as a node failure either


def test_an_invalid_configuration_fails_the_node_without_running_it() -> None:
    doc = retrieval_doc(config={"query_variable_selector": ["start", "q"], "knowledge_base_ids": []})
    retriever = ScriptedRetriever([])
    run = drive(doc, NodeRunner(ports(retriever=retriever)), {"q": "x"})
    error = run.results["kr"].error
    assert error is not None and error.code == "node_config_invalid" and "knowledge_base_ids" in error.message
    assert retriever.queries == []


def test_events_mark_the_start_and_the_end_of_each_node() -> None:
    run = drive(retrieval_doc(retry={"max_attempts": 2, "interval_ms": 0}),
                NodeRunner(ports(retriever=ScriptedRetriever(Busy(), [passage("ok")]))), {"q": "x"})
    kinds = [(kind, data["node_id"]) for kind, data in run.events]
    assert kinds == [("node_started", "start"), ("node_finished", "start"), ("node_started", "kr"),
                     ("node_finished", "kr"), ("node_started", "end"), ("node_finished", "end")]
    finished = run.events[3][1]
    assert finished["status"] == "succeeded" and finished["attempts"] == 2 and finished["error"] is None
    assert finished["node_type"] == "knowledge_retrieval" and finished["handle"] == "source"
    assert isinstance(finished["elapsed_ms"], int)
    assert run.events[2][1] == {"node_id": "kr", "node_type": "knowledge_retrieval", "title": ""}


def test_a_handled_failure_is_reported_in_its_finished_event() -> None:
    run = drive(retrieval_doc(strategy="fail_branch", branch=True),
                NodeRunner(ports(retriever=ScriptedRetriever(Busy("no index")))), {"q": "x"})
    finished = next(data for kind, data in run.events if kind == "node_finished" and data["node_id"] == "kr")
    assert finished["status"] == "succeeded" and finished["handle"] == "fail-branch"
    assert finished["error"] == {"code": "knowledge_search_busy", "message": "no index"}
