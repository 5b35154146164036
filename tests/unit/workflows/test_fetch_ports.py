"""The fetch port's wire form: what crosses the fetch function's invocation is JSON (bytes as
base64), read back exactly, and anything malformed is refused naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.catalog import Invoked, by_name
from shared.catalog import invoke
from shared.config import required_settings
from shared.workflows.fetch.ports import (
    FetchError,
    FetchFailed,
    FetchRefused,
    FetchRequest,
    FetchResponse,
    FetchTimeout,
    FetchTimeouts,
    FetchTooLarge,
    from_answer,
    to_answer,
)
from shared.workflows.fetch.wiring import FETCH_FUNCTION_TIMEOUT_S


def _over_the_wire(data: Any) -> Any:
    return json.loads(json.dumps(data))


def test_a_request_round_trips() -> None:
    request = FetchRequest("PATCH", "https://api.example.com/v1/items?x=1", headers=[("A", "1"), ("A", "2")],
                           params=[("q", "ü")], body=b"\x00\xff{}", timeouts=FetchTimeouts(1.5, 2, 3, total_s=9),
                           max_response_bytes=1234, follow_redirects=False, max_redirects=0)
    wire = _over_the_wire(request.to_json())
    assert wire["body"] == "AP97fQ=="
    assert FetchRequest.from_json(wire) == request


def test_a_minimal_request_takes_the_defaults() -> None:
    request = FetchRequest.from_json({"method": "GET", "url": "https://example.com/"})
    assert request == FetchRequest("GET", "https://example.com/")
    assert request.body is None and request.timeouts == FetchTimeouts() and request.max_redirects == 5
    assert request.max_response_bytes == 10 * 1024 * 1024 and request.follow_redirects is True


@pytest.mark.parametrize(("change", "says"), [
    ({"method": None}, "request.method must be a string"),
    ({"method": "get"}, "method must be one of GET"),
    ({"url": 5}, "request.url must be a string"),
    ({"headers": {"a": "b"}}, "request.headers must be a list of [name, value] pairs"),
    ({"params": [["a", 1]]}, "request.params must be a list of [name, value] pairs of strings"),
    ({"body": "abc"}, "request.body is not valid base64"),
    ({"body": 5}, "request.body must be a base64 string"),
    ({"max_response_bytes": True}, "request.max_response_bytes must be an integer"),
    ({"max_response_bytes": 0}, "max_response_bytes must be at least 1"),
    ({"max_redirects": 31}, "max_redirects must be between 0 and 30"),
    ({"follow_redirects": "yes"}, "request.follow_redirects must be true or false"),
    ({"timeouts": {"connect_s": 1, "read_s": 1}}, "timeouts.write_s is required"),
    ({"timeouts": {"connect_s": 1, "read_s": 0, "write_s": 1}}, "timeouts.read_s must be positive"),
    ({"timeouts": {"connect_s": "1", "read_s": 1, "write_s": 1}}, "timeouts.connect_s must be a number"),
])
def test_a_malformed_request_is_refused_naming_the_field(change: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError) as info:
        FetchRequest.from_json({"method": "GET", "url": "https://example.com/", **change})
    assert says in str(info.value)


def test_a_response_round_trips_and_reads_as_text_in_its_charset() -> None:
    response = FetchResponse(201, {"content-type": "text/plain; charset=ISO-8859-1", "x": "a, b"},
                             "façade".encode("latin-1"), "https://example.com/final")
    assert from_answer(_over_the_wire(to_answer(response))) == response
    assert response.text == "façade"
    assert FetchResponse(200, {"content-type": "text/plain; charset=no-such"}, b"ok \xff", "u").text == "ok \ufffd"
    assert FetchResponse(200, {}, "ü".encode(), "u").text == "ü"


@pytest.mark.parametrize("error", [
    FetchRefused("refused", rule="metadata", host="169.254.169.254"),
    FetchRefused("refused without detail"),
    FetchTimeout("slow"),
    FetchTooLarge("big"),
    FetchFailed("broken"),
])
def test_each_error_comes_back_as_itself(error: FetchError) -> None:
    answer = _over_the_wire(to_answer(error))
    assert answer["ok"] is False and answer["error"]["code"] == error.code
    with pytest.raises(FetchError) as info:
        from_answer(answer)
    back = info.value
    assert type(back) is type(error) and back.code == error.code and back.message == error.message
    if isinstance(error, FetchRefused):
        assert isinstance(back, FetchRefused) and (back.rule, back.host) == (error.rule, error.host)


def test_the_codes_are_the_nodes_error_codes() -> None:
    assert [kind.CODE for kind in (FetchRefused, FetchTimeout, FetchTooLarge, FetchFailed)] == [
        "http_request_refused", "http_request_timeout", "http_request_response_too_large", "http_request_failed"]
    unknown = FetchError.from_json({"code": "http_request_other", "message": "m"})
    assert type(unknown) is FetchError and unknown.code == "http_request_other"


@pytest.mark.parametrize(("answer", "says"), [
    ({"ok": "yes"}, "answer.ok must be true or false"),
    ([], "answer must be an object"),
    ({"ok": True, "response": {"status_code": 200, "headers": {"a": 1}, "body": "", "url": "u"}},
     "response.headers must map names to strings"),
    ({"ok": True, "response": {"status_code": "200", "headers": {}, "body": "", "url": "u"}},
     "response.status_code must be an integer"),
    ({"ok": False, "error": {"code": "x"}}, "error.message is required"),
])
def test_a_malformed_answer_is_refused(answer: Any, says: str) -> None:
    with pytest.raises(ValueError) as info:
        from_answer(answer)
    assert says in str(info.value)


def test_the_fetch_function_is_invoked_by_the_workflow_functions_and_outlived_by_their_wait() -> None:
    fetch = by_name()["workflow-fetch"]
    assert isinstance(fetch.trigger, Invoked) and fetch.access == () and not fetch.in_vpc
    # The callers' boto3 client waits at least as long as the function may run.
    assert fetch.timeout_s == FETCH_FUNCTION_TIMEOUT_S
    for caller in ("workflow-branch", "workflow-items"):
        entry = by_name()[caller]
        assert invoke("workflow-fetch") in entry.access and "aws" in entry.layers
        assert "WORKFLOW_FETCH_FUNCTION_NAME" in {r.variable for r in required_settings(entry)}
