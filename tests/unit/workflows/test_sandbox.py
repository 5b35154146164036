"""The code sandbox's contract without running code: a result checked against declared outputs
(as Dify's code node checks it), errors across the wire, the Lambda runner's mapping of
Lambda's own failures (botocore's Stubber speaks Lambda's protocol), and the wiring."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from shared.config import reset_settings
from shared.workflows.sandbox.local import SubprocessCodeRunner
from shared.workflows.sandbox.outputs import OutputLimits, check_outputs
from shared.workflows.sandbox.ports import (
    ERRORS,
    MAX_REQUEST_BYTES,
    CodeError,
    CodeInputInvalid,
    CodeLimits,
    CodeMemoryExceeded,
    CodeOutputInvalid,
    CodeRaised,
    CodeRequest,
    CodeSandboxUnavailable,
    CodeTimeout,
    error_from_wire,
)
from shared.workflows.sandbox.remote import LambdaCodeRunner
from shared.workflows.sandbox.wiring import code_runner, use_code_runner

# --- check_outputs ----------------------------------------------------------------------------


def _invalid(result: dict[str, Any], declared: dict[str, str], **limits: int) -> CodeOutputInvalid:
    with pytest.raises(CodeOutputInvalid) as info:
        check_outputs(result, declared, OutputLimits(**limits) if limits else None)
    assert info.value.code == "code_output_invalid"
    return info.value


def test_declared_outputs_of_every_type_pass_through() -> None:
    result = {"s": "héllo", "n": 2.5, "i": -3, "b": False, "o": {"k": [1, 2], "inner": {"x": None}},
              "as": ["a", None], "an": [1, 2.5], "ab": [True, None], "ao": [{"a": 1}, None], "none": None}
    declared = {"s": "string", "n": "number", "i": "number", "b": "boolean", "o": "object", "as": "array[string]",
                "an": "array[number]", "ab": "array[boolean]", "ao": "array[object]", "none": "string"}
    assert check_outputs(result, declared) == result


def test_a_missing_output_is_named() -> None:
    error = _invalid({"a": "x"}, {"a": "string", "total": "number"})
    assert error.output == "total" and "total is missing" in error.message and "return it" in error.message


def test_undeclared_outputs_are_refused_as_dify_refuses_them() -> None:
    error = _invalid({"a": "x", "debug": 1, "extra": 2}, {"a": "string"})
    assert "debug, extra" in error.message and "declare them" in error.message


@pytest.mark.parametrize(("value", "kind", "words"), [
    (1, "string", "must be a string, got a number"),
    ("1", "number", "must be a number, got a string"),
    (1, "boolean", "must be a boolean"),
    ("true", "boolean", "must be a boolean"),
    ([1], "object", "must be an object, got an array"),
    ({"a": 1}, "array[string]", "must be an array of strings"),
    (2**63, "number", "out of range"),
    (1e-21, "number", "decimal places"),
])
def test_a_value_of_the_wrong_type_is_named(value: Any, kind: str, words: str) -> None:
    error = _invalid({"out": value}, {"out": kind})
    assert error.output == "out" and words in error.message


def test_booleans_count_as_numbers_as_in_dify() -> None:
    # Dify turns True/False into 1/0 for number outputs, for workflows written that way; a
    # boolean never comes out of a number output as a boolean.
    checked = check_outputs({"n": True, "ns": [False, 2]}, {"n": "number", "ns": "array[number]"})
    assert checked == {"n": 1, "ns": [0, 2]}
    assert type(checked["n"]) is int


def test_array_items_are_checked_and_named_by_index() -> None:
    assert _invalid({"tags": ["a", 2]}, {"tags": "array[string]"}).output == "tags[1]"
    assert _invalid({"ns": [1, None]}, {"ns": "array[number]"}).output == "ns[1]"
    assert _invalid({"flags": [True, 0]}, {"flags": "array[boolean]"}).output == "flags[1]"
    assert _invalid({"rows": [{"a": 1}, "x"]}, {"rows": "array[object]"}).output == "rows[1]"
    error = _invalid({"ns": list(range(11))}, {"ns": "array[number]"}, max_array_length=10)
    assert "11 items" in error.message


def test_strings_are_capped_and_lose_nul_characters() -> None:
    assert check_outputs({"s": "a\x00b"}, {"s": "string"}) == {"s": "ab"}
    error = _invalid({"s": "x" * 11}, {"s": "string"}, max_string_length=10)
    assert "11 characters" in error.message
    # Inside objects too.
    assert _invalid({"o": {"deep": ["x" * 11]}}, {"o": "object"}, max_string_length=10).output == "o.deep[0]"


def test_objects_nest_at_most_five_levels() -> None:
    ok = {"o": {"a": {"b": {"c": {"d": 1}}}}}
    assert check_outputs(ok, {"o": "object"}) == ok
    error = _invalid({"o": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, {"o": "object"})
    assert error.output == "o.a.b.c.d" and "deeper than 5" in error.message
    assert _invalid({"rows": [{"a": {"b": {"c": {"d": {}}}}}]}, {"rows": "array[object]"}).output == "rows[0].a.b.c.d"


def test_an_untyped_array_inside_an_object_holds_one_type() -> None:
    error = _invalid({"o": {"mixed": [1, "a"]}}, {"o": "object"})
    assert error.output == "o.mixed" and "same type" in error.message


def test_an_unknown_declared_type_is_refused() -> None:
    error = _invalid({"x": 1}, {"x": "integer"})
    assert "unknown type 'integer'" in error.message and "array[object]" in error.message


# --- The request and errors on the wire ---------------------------------------------------------


def test_limits_are_bounded() -> None:
    for bad in ({"cpu_seconds": 0}, {"wall_seconds": 31}, {"memory_mb": 32}, {"output_bytes": 10 * 2**20},
                {"cpu_seconds": True}):
        with pytest.raises(ValueError, match="code limit"):
            CodeLimits(**bad)


def test_a_request_round_trips_and_a_malformed_one_is_refused() -> None:
    request = CodeRequest("def main(a): return {'a': a}", {"a": [1, "é"]}, CodeLimits(cpu_seconds=2))
    assert CodeRequest.from_wire(json.loads(request.encoded())) == request
    for payload in ([], {"code": 1}, {"code": "", "inputs": []}, {"code": "", "limits": {"cpu": 1}},
                    {"code": "", "limits": {"cpu_seconds": 99}}, {"code": "", "extra": 1}):
        with pytest.raises(CodeInputInvalid):
            CodeRequest.from_wire(payload)


def test_inputs_that_are_not_json_or_too_large_are_refused_before_running() -> None:
    with pytest.raises(CodeInputInvalid, match="not JSON"):
        CodeRequest("", {"s": {1, 2}}).encoded()
    with pytest.raises(CodeInputInvalid, match="smaller inputs"):
        CodeRequest("", {"s": "x" * MAX_REQUEST_BYTES}).encoded()


def test_every_error_comes_back_from_the_wire_as_its_own_class() -> None:
    for code, cls in ERRORS.items():
        error = cls("what happened; what to do", stdout="printed", line=3)
        back = error_from_wire(json.loads(json.dumps(error.to_wire())))
        assert type(back) is cls and back.code == code
        assert (back.message, back.stdout, back.details) == ("what happened; what to do", "printed", {"line": 3})
    assert isinstance(error_from_wire({"code": "code_unheard_of", "message": "x"}), CodeSandboxUnavailable)
    odd = error_from_wire({"code": "code_raised", "message": "m", "details": {"stdout": 1, "line": None}})
    assert isinstance(odd, CodeRaised) and odd.stdout == "" and odd.details == {"stdout": 1}
    assert isinstance(error_from_wire("nonsense"), CodeSandboxUnavailable)


# --- The Lambda runner: Lambda's own answers ---------------------------------------------------

FUNCTION = "stratus-dev-workflow-code"
REQUEST = CodeRequest("def main():\n    return {}\n", {}, CodeLimits(wall_seconds=3, memory_mb=128))


@pytest.fixture
def lam() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("lambda", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def _answer(stubber: Stubber, body: Any, function_error: str | None = None) -> None:
    data = json.dumps(body).encode()
    response: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(data), len(data))}
    if function_error:
        response["FunctionError"] = function_error
    stubber.add_response("invoke", response, {"FunctionName": FUNCTION, "InvocationType": "RequestResponse",
                                              "Payload": REQUEST.encoded()})


def _fails(lam: tuple[Any, Stubber]) -> CodeError:
    client, stubber = lam
    with pytest.raises(CodeError) as info:
        LambdaCodeRunner(lambda: client, FUNCTION).run(REQUEST)
    stubber.assert_no_pending_responses()
    return info.value


def test_the_sandbox_answer_is_the_run(lam: tuple[Any, Stubber]) -> None:
    client, stubber = lam
    _answer(stubber, {"outputs": {"x": 1}, "stdout": "hi\n", "stdout_truncated": False, "cpu_ms": 12,
                      "elapsed_ms": 30})
    run = LambdaCodeRunner(lambda: client, FUNCTION).execute(REQUEST)
    assert (run.outputs, run.stdout, run.cpu_ms, run.elapsed_ms) == ({"x": 1}, "hi\n", 12, 30)


def test_the_codes_own_failure_comes_back_as_its_class(lam: tuple[Any, Stubber]) -> None:
    _answer(lam[1], {"error": CodeRaised("main raised", stdout="so far", error_type="KeyError", line=2).to_wire()})
    error = _fails(lam)
    assert isinstance(error, CodeRaised) and error.error_type == "KeyError" and error.line == 2
    assert error.stdout == "so far"


def test_the_function_timing_out_is_a_timeout(lam: tuple[Any, Stubber]) -> None:
    _answer(lam[1], {"errorType": "Sandbox.Timedout",
                     "errorMessage": "2025-01-01T00:00:00Z abc Task timed out after 45.00 seconds"}, "Unhandled")
    error = _fails(lam)
    assert isinstance(error, CodeTimeout) and error.details == {"limit": "wall", "seconds": 3}


def test_the_function_running_out_of_memory_is_memory_exceeded(lam: tuple[Any, Stubber]) -> None:
    _answer(lam[1], {"errorType": "Runtime.OutOfMemory",
                     "errorMessage": "RequestId: abc Error: Runtime exited with error: signal: killed"}, "Unhandled")
    error = _fails(lam)
    assert isinstance(error, CodeMemoryExceeded) and error.details == {"memory_mb": 128}


def test_a_crash_of_the_function_itself_is_retryable(lam: tuple[Any, Stubber]) -> None:
    _answer(lam[1], {"errorType": "ImportModuleError", "errorMessage": "No module named 'x'"}, "Unhandled")
    error = _fails(lam)
    assert isinstance(error, CodeSandboxUnavailable) and error.retryable
    assert error.details == {"cause": "ImportModuleError"}


def test_throttling_is_retryable_and_an_oversized_request_is_the_inputs_fault(lam: tuple[Any, Stubber]) -> None:
    stubber = lam[1]
    stubber.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", 429)
    error = _fails(lam)
    assert isinstance(error, CodeSandboxUnavailable) and error.retryable and "busy" in error.message
    stubber.add_client_error("invoke", "RequestEntityTooLargeException", "too large", 413)
    assert isinstance(_fails(lam), CodeInputInvalid)


# --- Wiring ---------------------------------------------------------------------------------------


def test_the_runner_is_the_sandbox_function_when_the_settings_name_it(monkeypatch: pytest.MonkeyPatch) -> None:
    use_code_runner(None)
    try:
        monkeypatch.delenv("WORKFLOW_CODE_FUNCTION_NAME", raising=False)
        reset_settings()
        assert isinstance(code_runner(), SubprocessCodeRunner)
        assert code_runner() is code_runner()
        use_code_runner(None)
        monkeypatch.setenv("WORKFLOW_CODE_FUNCTION_NAME", FUNCTION)
        reset_settings()
        runner = code_runner()
        assert isinstance(runner, LambdaCodeRunner) and runner.function_name == FUNCTION
    finally:
        use_code_runner(None)
        monkeypatch.delenv("WORKFLOW_CODE_FUNCTION_NAME", raising=False)
        reset_settings()
