"""The code and HTTP-request executors against in-memory fakes of their ports (the sandbox's
CodeRunner and the fetch path's HttpFetcher): what they send, how they read the answer, and how
the ports' errors and non-2xx statuses become the node's outcome."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.workflows.engine.nodes.http_request import decode
from shared.workflows.engine.runner import NodeRunner
from shared.workflows.fetch.ports import FetchRequest, FetchResponse, FetchTimeout
from shared.workflows.sandbox.ports import CodeRaised, CodeRequest
from tests.support.engine_runs import document, drive, ports


def chain(node: dict[str, Any], outputs: dict[str, list[str]], variables: list[str]):
    return document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": v} for v in variables]}},
        node,
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": name, "value_selector": selector} for name, selector in outputs.items()]}},
    ], [("start", node["id"]), (node["id"], "end")])


# --- code ----------------------------------------------------------------------------------------

class FakeCodeRunner:
    """Runs nothing: answers what ``answer(request)`` returns (or raises)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[CodeRequest] = []

    def run(self, request: CodeRequest) -> dict[str, Any]:
        self.requests.append(request)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer(request)  # type: ignore[no-any-return]


CODE = "def main(name: str, n: int) -> dict:\n    return {'greeting': 'hi ' + name, 'twice': n * 2}"


def code_node(**extra: Any) -> dict[str, Any]:
    return {"id": "code", "type": "code", **extra, "config": {
        "code": CODE, "variables": [{"variable": "name", "value_selector": ["start", "name"]},
                                    {"variable": "n", "value_selector": ["start", "n"]}],
        "outputs": {"greeting": {"type": "string"}, "twice": {"type": "number"}}}}


def test_code_sends_its_variables_under_the_nodes_time_limits_and_checks_the_outputs() -> None:
    runner = FakeCodeRunner(lambda r: {"greeting": "hi " + r.inputs["name"], "twice": r.inputs["n"] * 2})
    run = drive(chain(code_node(timeout_s=7), {"g": ["code", "greeting"], "t": ["code", "twice"]}, ["name", "n"]),
                NodeRunner(ports(code_runner=runner)), {"name": "Ana", "n": 21})
    assert run.outputs == {"g": "hi Ana", "t": 42}
    [request] = runner.requests
    assert request.code == CODE and dict(request.inputs) == {"name": "Ana", "n": 21}
    assert (request.limits.wall_seconds, request.limits.cpu_seconds) == (7, 7)
    assert run.results["code"].inputs == {"name": "Ana", "n": 21}


def test_code_outputs_that_do_not_match_the_declaration_fail_the_node() -> None:
    runner = FakeCodeRunner(lambda r: {"greeting": 5, "twice": 1})
    run = drive(chain(code_node(), {"g": ["code", "greeting"]}, ["name", "n"]), NodeRunner(ports(code_runner=runner)),
                {"name": "Ana", "n": 1})
    error = run.results["code"].error
    assert error is not None and error.code == "code_output_invalid" and "greeting" in error.message


def test_sandbox_errors_keep_their_code_and_what_the_code_printed() -> None:
    raised = CodeRaised("ZeroDivisionError: division by zero (line 2)", stdout="starting\n",
                        error_type="ZeroDivisionError", line=2)
    run = drive(chain(code_node(error_strategy="fail_branch"), {"g": ["code", "greeting"]}, ["name", "n"]),
                NodeRunner(ports(code_runner=FakeCodeRunner(raised))), {"name": "Ana", "n": 1})
    result = run.results["code"]
    assert result.handle == "fail-branch"
    assert result.error is not None and result.error.code == "code_raised"
    assert result.error.details == {"error_type": "ZeroDivisionError", "line": 2, "stdout": "starting\n"}
    assert result.outputs == {"error_message": "ZeroDivisionError: division by zero (line 2)",
                              "error_type": "code_raised"}


# --- http request ---------------------------------------------------------------------------------

class FakeFetcher:
    def __init__(self, *answers: FetchResponse | BaseException) -> None:
        self.answers = list(answers)
        self.requests: list[FetchRequest] = []

    def fetch(self, request: FetchRequest) -> FetchResponse:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def response(status: int = 200, body: bytes = b"ok", content_type: str = "text/plain") -> FetchResponse:
    return FetchResponse(status, {"content-type": content_type, "x-trace": "t1"}, body, "https://api.example.com/x")


def http_node(config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "http", "type": "http_request", **extra,
            "config": {"url": "https://api.example.com/items/{{#start.item#}}", **config}}


def http_run(config: dict[str, Any], fetcher: FakeFetcher, inputs: dict[str, Any] | None = None, **extra: Any):
    doc = chain(http_node(config, **extra), {"status": ["http", "status_code"], "body": ["http", "body"],
                                              "headers": ["http", "headers"]}, ["item", "token", "q"])
    return drive(doc, NodeRunner(ports(fetcher=fetcher)), inputs or {"item": "42", "token": "s3cret", "q": "a b"})


def test_the_request_is_rendered_from_the_config() -> None:
    fetcher = FakeFetcher(response(body=b'{"id": 42}', content_type="application/json"))
    run = http_run({"method": "POST", "headers": [{"key": "X-Item", "value": "{{#start.item#}}"},
                                                  {"key": "{{#start.absent#}}", "value": "dropped"}],
                    "params": [{"key": "q", "value": "{{#start.q#}}"}],
                    "body": {"type": "json", "data": '{"item": "{{#start.item#}}", "n": 1}'},
                    "timeout": {"connect_s": 3, "read_s": 30, "write_s": 5}, "max_response_bytes": 1000,
                    "follow_redirects": False}, fetcher)
    [request] = fetcher.requests
    assert (request.method, request.url) == ("POST", "https://api.example.com/items/42")
    assert request.params == [("q", "a b")]
    assert request.headers == [("X-Item", "42"), ("Content-Type", "application/json")]
    assert json.loads(request.body or b"") == {"item": "42", "n": 1}
    assert (request.timeouts.connect_s, request.timeouts.read_s, request.timeouts.write_s) == (3, 30, 5)
    assert request.timeouts.total_s == 120  # the node type's default timeout
    assert (request.max_response_bytes, request.follow_redirects) == (1000, False)
    assert run.outputs == {"status": 200, "body": '{"id": 42}',
                           "headers": {"content-type": "application/json", "x-trace": "t1"}}


@pytest.mark.parametrize(("auth", "header"), [
    ({"scheme": "bearer"}, ("Authorization", "Bearer s3cret")),
    ({"scheme": "basic", "api_key": "ana:{{#start.token#}}"},
     ("Authorization", "Basic " + base64.b64encode(b"ana:s3cret").decode())),
    ({"scheme": "basic"}, ("Authorization", "Basic s3cret")),
    ({"scheme": "custom", "header": "X-Api-Key"}, ("X-Api-Key", "s3cret")),
])
def test_api_key_authorization_is_sent_but_never_recorded(auth: dict[str, Any], header: tuple[str, str]) -> None:
    fetcher = FakeFetcher(response())
    run = http_run({"authorization": {"type": "api-key", "api_key": "{{#start.token#}}", **auth}}, fetcher)
    assert header in fetcher.requests[0].headers
    recorded = json.dumps(run.results["http"].inputs)
    assert "s3cret" not in recorded and "[redacted]" in recorded


def test_a_header_may_set_the_content_type_of_the_body() -> None:
    fetcher = FakeFetcher(response())
    http_run({"method": "PUT", "headers": [{"key": "content-type", "value": "text/csv"}],
              "body": {"type": "raw-text", "data": "a,b\n{{#start.item#}},2"}}, fetcher)
    [request] = fetcher.requests
    assert request.headers == [("content-type", "text/csv")] and request.body == b"a,b\n42,2"


def test_form_bodies() -> None:
    fetcher = FakeFetcher(response())
    fields = [{"key": "item", "value": "{{#start.item#}}"}, {"key": "q", "value": "{{#start.q#}}"}]
    http_run({"method": "POST", "body": {"type": "x-www-form-urlencoded", "data": fields}}, fetcher)
    http_run({"method": "POST", "body": {"type": "form-data", "data": fields}}, fetcher)
    urlencoded, multipart = fetcher.requests
    assert urlencoded.body == b"item=42&q=a+b"
    assert ("Content-Type", "application/x-www-form-urlencoded") in urlencoded.headers
    content_type = dict(multipart.headers)["Content-Type"]
    boundary = content_type.split("boundary=")[1]
    assert content_type.startswith("multipart/form-data; boundary=")
    assert multipart.body == (f'--{boundary}\r\nContent-Disposition: form-data; name="item"\r\n\r\n42\r\n'
                              f'--{boundary}\r\nContent-Disposition: form-data; name="q"\r\n\r\na b\r\n'
                              f"--{boundary}--\r\n").encode()


@pytest.mark.parametrize(("config", "code"), [
    ({"url": "{{#start.item#}}/path"}, "http_request_invalid_url"),
    ({"method": "POST", "body": {"type": "json", "data": "{not json {{#start.item#}}"}}, "http_request_invalid_body"),
])
def test_a_request_that_cannot_be_built_fails_before_any_fetch(config: dict[str, Any], code: str) -> None:
    fetcher = FakeFetcher(response())
    run = http_run(config, fetcher)
    assert run.results["http"].error is not None and run.results["http"].error.code == code
    assert fetcher.requests == []


def test_the_body_is_decoded_by_its_charset_else_utf8() -> None:
    assert decode({"content-type": "text/plain; charset=ISO-8859-1"}, "café".encode("latin-1")) == "café"
    assert decode({"content-type": 'text/html; charset="utf-8"'}, "你好 🌍".encode()) == "你好 🌍"
    assert decode({}, "你好".encode()) == "你好"
    assert decode({"content-type": "text/plain; charset=no-such"}, b"ok \xff") == "ok \ufffd"
    fetcher = FakeFetcher(response(body="résumé".encode("cp1252"), content_type="text/plain; charset=windows-1252"))
    assert http_run({}, fetcher).outputs["body"] == "résumé"


def test_a_status_outside_2xx_is_an_answer_unless_the_node_retries_or_has_a_strategy() -> None:
    plain = http_run({}, FakeFetcher(response(404, b"missing")))
    assert plain.status == "succeeded" and plain.outputs["status"] == 404 and plain.outputs["body"] == "missing"
    fetcher = FakeFetcher(response(503, b"busy"), response(200, b"fine"))
    retried = http_run({}, fetcher, retry={"max_attempts": 2, "interval_ms": 0})
    assert retried.results["http"].attempts == 2 and retried.outputs["body"] == "fine"
    defaulted = http_run({}, FakeFetcher(response(500, b"boom")), error_strategy="default_value",
                         default_value={"status_code": 599, "body": "fallback"})
    result = defaulted.results["http"]
    assert defaulted.outputs["status"] == 599 and defaulted.outputs["body"] == "fallback"
    assert result.error is not None and result.error.code == "http_request_status_error"
    assert result.error.details == {"status_code": 500}


def test_fetch_errors_keep_their_codes() -> None:
    run = http_run({}, FakeFetcher(FetchTimeout("no answer within 60 s")))
    error = run.results["http"].error
    assert run.status == "failed" and error is not None
    assert (error.code, error.message) == ("http_request_timeout", "no answer within 60 s")
