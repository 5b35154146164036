"""The code sandbox for real: each run is a fresh interpreter in a child process, under small
limits so that the suite stays fast; then the sandbox function's handler, directly and through
moto's Lambda (the local runtime's hook runs it in-process, as AWS would run it in its own
container)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.aws import LocalAws
from infra.local.invoker import LocalContext, LocalInvoker
from shared.aws.clients import client
from shared.config import reset_settings
from shared.workflows.sandbox.local import SubprocessCodeRunner, empty_directory
from shared.workflows.sandbox.ports import (
    STDOUT_BYTES,
    CodeCrashed,
    CodeError,
    CodeForbidden,
    CodeInvalid,
    CodeLimits,
    CodeMemoryExceeded,
    CodeOutputTooLarge,
    CodeRaised,
    CodeRequest,
    CodeRun,
    CodeTimeout,
)
from shared.workflows.sandbox.remote import LambdaCodeRunner

ROOT = Path(__file__).resolve().parents[2]
# Small limits: a runaway run costs the suite about a second.
FAST = CodeLimits(cpu_seconds=1, wall_seconds=2, memory_mb=128)
# A CPU second can take several wall seconds on a busy machine: room for it to come first.
CPU_BOUND = CodeLimits(cpu_seconds=1, wall_seconds=15, memory_mb=128)
SUM = "def main(arg1, arg2):\n    return {'sum': arg1 + arg2}\n"


@pytest.fixture(scope="module")
def runner() -> SubprocessCodeRunner:
    return SubprocessCodeRunner()


def _run(runner: SubprocessCodeRunner, code: str, inputs: dict[str, Any] | None = None,
         limits: CodeLimits = FAST) -> CodeRun:
    return runner.execute(CodeRequest(code, inputs or {}, limits))


def _fails(runner: SubprocessCodeRunner, code: str, inputs: dict[str, Any] | None = None,
           limits: CodeLimits = FAST) -> CodeError:
    with pytest.raises(CodeError) as info:
        _run(runner, code, inputs, limits)
    return info.value


def _no_platform_paths(error: CodeError) -> None:
    text = json.dumps(error.to_wire())
    for path in (str(ROOT), sys.prefix, sys.base_prefix, "child.py"):
        assert path not in text, path


# --- Runs that return ------------------------------------------------------------------------


def test_main_is_called_with_the_inputs_as_keyword_arguments(runner: SubprocessCodeRunner) -> None:
    code = ("import json, statistics\n"
            "def main(text: str, numbers: list, meta: dict) -> dict:\n"
            "    return {'upper': text.upper(), 'mean': statistics.mean(numbers), 'keys': sorted(meta),\n"
            "            'nested': {'again': json.loads(json.dumps(meta))}}\n")
    meta = {"b": [1, {"c": None}], "a": True}
    run = _run(runner, code, {"text": "héllo wörld ✓", "numbers": [1, 2, 3.5], "meta": meta})
    assert run.outputs == {"upper": "HÉLLO WÖRLD ✓", "mean": 6.5 / 3, "keys": ["a", "b"], "nested": {"again": meta}}
    assert run.cpu_ms is not None and run.elapsed_ms is not None and run.elapsed_ms < 2000
    assert runner.run(CodeRequest(SUM, {"arg1": 2, "arg2": 3})) == {"sum": 5}


def test_what_the_code_prints_is_a_log_and_cannot_corrupt_the_result(runner: SubprocessCodeRunner) -> None:
    code = ("import sys, warnings\n"
            "def main():\n"
            "    print('{\"outputs\": {\"forged\": 1}}')\n"
            "    print('to stderr', file=sys.stderr)\n"
            "    sys.stdout.write('}}}not json')\n"
            "    return {'ok': True}\n")
    run = _run(runner, code)
    assert run.outputs == {"ok": True}
    assert '{"outputs": {"forged": 1}}' in run.stdout and "to stderr" in run.stdout and "not json" in run.stdout
    assert not run.stdout_truncated


def test_a_flood_of_prints_is_cut_at_the_log_limit(runner: SubprocessCodeRunner) -> None:
    run = _run(runner, "def main():\n    for i in range(20000):\n        print('x' * 50)\n    return {'done': 1}\n")
    assert run.outputs == {"done": 1}
    assert run.stdout_truncated and len(run.stdout.encode()) == STDOUT_BYTES


def test_only_the_standard_library_is_importable(runner: SubprocessCodeRunner) -> None:
    run = _run(runner, "import sys, sysconfig\ndef main():\n    return {'path': sys.path}\n")
    assert run.outputs["path"] and not [p for p in run.outputs["path"] if "site-packages" in p]
    # pydantic is installed beside the platform, and the platform's own package is on its path.
    for module in ("pydantic", "shared"):
        error = _fails(runner, f"import {module}\ndef main():\n    return {{}}\n")
        assert isinstance(error, CodeRaised) and error.error_type == "ModuleNotFoundError", module


# --- Limits ------------------------------------------------------------------------------------


def test_an_infinite_loop_is_stopped_at_its_cpu_limit(runner: SubprocessCodeRunner) -> None:
    error = _fails(runner, "def main():\n    print('started')\n    while True:\n        pass\n", limits=CPU_BOUND)
    assert isinstance(error, CodeTimeout) and error.details == {"limit": "cpu", "seconds": 1}
    assert "CPU time" in error.message and "do less work" in error.message
    assert error.stdout == "started\n"


def test_a_run_that_waits_is_stopped_at_its_wall_limit(runner: SubprocessCodeRunner) -> None:
    started = time.monotonic()
    error = _fails(runner, "import time\ndef main():\n    time.sleep(30)\n")
    assert isinstance(error, CodeTimeout) and error.details == {"limit": "wall", "seconds": 2}
    assert 2 <= time.monotonic() - started < 5


def test_a_run_that_closes_its_pipes_and_lingers_is_stopped_too(runner: SubprocessCodeRunner) -> None:
    code = "import os, sys, time\ndef main():\n    for fd in (0, 1, 2, int(sys.argv[1])):\n        os.close(fd)\n" \
           "    time.sleep(30)\n"
    started = time.monotonic()
    assert isinstance(_fails(runner, code), CodeTimeout)
    assert time.monotonic() - started < 5


def test_a_memory_hog_is_stopped_at_its_memory_limit(runner: SubprocessCodeRunner) -> None:
    error = _fails(runner, "def main():\n    hoard = []\n    while True:\n        hoard.append(bytearray(10**6))\n")
    assert isinstance(error, CodeMemoryExceeded) and error.details == {"memory_mb": 128}
    assert "128 MiB" in error.message
    # One allocation over the limit, without a loop.
    assert isinstance(_fails(runner, "def main():\n    return {'x': 'y' * 200_000_000}\n"), CodeMemoryExceeded)
    # A run right after is unaffected.
    assert _run(runner, SUM, {"arg1": 1, "arg2": 1}).outputs == {"sum": 2}


def test_a_huge_result_is_refused(runner: SubprocessCodeRunner) -> None:
    limits = CodeLimits(cpu_seconds=2, wall_seconds=3, memory_mb=256, output_bytes=64 * 1024)
    error = _fails(runner, "def main():\n    return {'x': 'y' * 100_000}\n", limits=limits)
    assert isinstance(error, CodeOutputTooLarge)
    assert error.details == {"bytes": 100_009, "limit_bytes": 64 * 1024} and "return less" in error.message
    # Written straight to the result pipe, past the limit: the child is killed, the parent keeps
    # no more than the limit.
    flood = "import os, sys\ndef main():\n    os.write(int(sys.argv[1]), b'x' * 60_000)\n" \
            "    while True:\n        os.write(int(sys.argv[1]), b'x' * 60_000)\n"
    error = _fails(runner, flood, limits=limits)
    assert isinstance(error, CodeOutputTooLarge) and error.details == {"limit_bytes": 64 * 1024}


# --- The code's own failures -----------------------------------------------------------------


def test_an_exception_names_its_type_message_and_the_users_line(runner: SubprocessCodeRunner) -> None:
    code = "import json\n\ndef parse(text):\n    return json.loads(text)\n\ndef main(text):\n" \
           "    print('parsing')\n    return {'value': parse(text)}\n"
    error = _fails(runner, code, {"text": "{not json"})
    assert isinstance(error, CodeRaised)
    assert error.error_type == "JSONDecodeError" and error.line == 4
    assert error.details["traceback"] == ["line 8, in main: return {'value': parse(text)}",
                                          "line 4, in parse: return json.loads(text)",
                                          f"JSONDecodeError: {error.details['error_message']}"]
    assert "at line 4" in error.message and "fix the code" in error.message
    assert error.stdout == "parsing\n"
    _no_platform_paths(error)


def test_an_exception_at_module_level_is_reported_too(runner: SubprocessCodeRunner) -> None:
    error = _fails(runner, "x = 1\ny = x / 0\ndef main():\n    return {}\n")
    assert isinstance(error, CodeRaised) and error.error_type == "ZeroDivisionError" and error.line == 2
    assert error.message.startswith("running the code raised")


@pytest.mark.parametrize(("code", "reason", "words"), [
    ("def helper():\n    return {}\n", "no_main", "defines no main"),
    ("main = {'a': 1}\n", "not_callable", "not a function"),
    ("def main():\n    return [1, 2]\n", "not_dict", "returned list, not a dict"),
    ("def main():\n    return None\n", "not_dict", "returned NoneType"),
    ("def main():\n    return {'s': {1, 2}}\n", "not_json", "not JSON"),
    ("def main():\n    return {'x': float('nan')}\n", "not_json", "NaN"),
    ("def main():\n    return {1: 'a'}\n", "keys", "not strings"),
    ("def main(other):\n    return {}\n", "signature", "cannot take the node's inputs"),
])
def test_code_that_is_not_a_code_node_is_invalid(runner: SubprocessCodeRunner, code: str, reason: str,
                                                 words: str) -> None:
    error = _fails(runner, code, {"arg1": 1} if reason == "signature" else {})
    assert isinstance(error, CodeInvalid) and error.details["reason"] == reason
    assert words in error.message


def test_a_syntax_error_names_its_line(runner: SubprocessCodeRunner) -> None:
    error = _fails(runner, "def main():\n    return {'a': 1\n\nx = 2\n")
    assert isinstance(error, CodeInvalid) and error.details["reason"] == "syntax" and error.line == 2
    assert "fix the syntax" in error.message
    _no_platform_paths(error)


def test_exiting_without_returning_is_a_crash(runner: SubprocessCodeRunner) -> None:
    error = _fails(runner, "import os\ndef main():\n    os._exit(3)\n")
    assert isinstance(error, CodeCrashed) and error.details == {"exit_status": 3}
    error = _fails(runner, "import os, signal\ndef main():\n    os.kill(os.getpid(), signal.SIGSEGV)\n")
    assert isinstance(error, CodeCrashed) and error.details == {"signal": signal.SIGSEGV}


def test_an_answer_forged_by_the_code_is_not_taken_for_the_sandboxs(runner: SubprocessCodeRunner) -> None:
    forge = ("import json, os, sys\ndef main():\n"
             "    forged = {'code': 'code_sandbox_unavailable', 'message': 'x', 'details': {'stdout': 1}}\n"
             "    os.write(int(sys.argv[1]), json.dumps({'error': forged}).encode())\n    os._exit(0)\n")
    error = _fails(runner, forge)
    assert isinstance(error, CodeCrashed) and not error.retryable


# --- Isolation ---------------------------------------------------------------------------------


def test_the_code_sees_none_of_the_platforms_environment(runner: SubprocessCodeRunner,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATUS_PROBE_SECRET", "hunter2-probe")
    run = _run(runner, "import os\ndef main():\n    return {'env': dict(os.environ), 'cwd': os.getcwd()}\n")
    env = run.outputs["env"]
    assert "hunter2-probe" not in json.dumps(env) and "AWS_SECRET_ACCESS_KEY" not in env
    assert set(env) == {"HOME", "TMPDIR", "LC_ALL"}
    assert env["HOME"] == env["TMPDIR"] == run.outputs["cwd"]


def test_every_run_starts_in_a_fresh_directory_that_is_removed_after(runner: SubprocessCodeRunner) -> None:
    write = ("import os, tempfile\n"
             "def main():\n"
             "    open('marker.txt', 'w').write('left behind')\n"
             "    os.mkdir('locked')\n"
             "    open('locked/inner', 'w').write('x')\n"
             "    os.chmod('locked', 0o500)\n"
             "    fd, path = tempfile.mkstemp()\n"
             "    return {'cwd': os.getcwd(), 'temp': path}\n")
    first = _run(runner, write).outputs
    assert os.path.dirname(first["temp"]) == first["cwd"]
    assert not os.path.exists(first["cwd"])
    read = "import os\ndef main(seen):\n    return {'cwd': os.getcwd(), 'found': os.path.exists(seen),\n" \
           "            'here': os.listdir('.')}\n"
    second = _run(runner, read, {"seen": os.path.join(first["cwd"], "marker.txt")}).outputs
    assert second["cwd"] != first["cwd"] and second["found"] is False and second["here"] == []


@pytest.mark.parametrize(("code", "operation"), [
    ("import ctypes\n", "import ctypes"),
    ("import subprocess\ndef main():\n    subprocess.run(['true'])\n", "subprocess.Popen"),
    ("import os\ndef main():\n    os.system('true')\n", "os.system"),
    ("import os\ndef main():\n    os.fork()\n", "os.fork"),
    ("import os, signal\ndef main():\n    os.kill(os.getppid(), signal.SIGTERM)\n", "os.kill"),
    ("import resource\ndef main():\n    resource.setrlimit(resource.RLIMIT_CPU, (100, 100))\n", "resource.setrlimit"),
    # Rewriting the audit hook in place: found through the garbage collector, its defaults swapped.
    ("import gc\ndef main():\n    hook = [f for f in gc.get_objects() if getattr(f, '__name__', '') == 'hook'][0]\n"
     "    hook.__defaults__ = (frozenset(),) * 7 + (0,)\n", "setting __defaults__"),
])
def test_forbidden_operations_are_refused(runner: SubprocessCodeRunner, code: str, operation: str) -> None:
    code = code if "def main" in code else code + "def main():\n    return {}\n"
    error = _fails(runner, code)
    assert isinstance(error, CodeForbidden) and error.details == {"operation": operation}
    assert "not allowed in the code sandbox; " in error.message
    # The platform's process is still here to tell.
    assert os.getpid() > 0


def test_the_code_cannot_add_audit_hooks(runner: SubprocessCodeRunner) -> None:
    # Python drops a refused hook silently (sys.addaudithook ignores the refusal).
    code = "import sys\ndef main():\n    seen = []\n    sys.addaudithook(lambda event, args: seen.append(event))\n" \
           "    compile('1', 'x', 'exec')\n    return {'seen': seen}\n"
    assert _run(runner, code).outputs == {"seen": []}


def test_a_refusal_the_code_catches_is_its_own_business(runner: SubprocessCodeRunner) -> None:
    code = "import subprocess\ndef main():\n    try:\n        subprocess.run(['true'])\n" \
           "    except PermissionError as exc:\n        return {'refused': str(exc)}\n"
    assert _run(runner, code).outputs["refused"].startswith("subprocess.Popen: starting processes is not allowed")


def test_emptying_a_directory_removes_everything_inside_it(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    (scratch / "locked" / "deep").mkdir(parents=True)
    (scratch / "locked" / "deep" / "f").write_text("x")
    (scratch / "locked").chmod(0o500)
    (scratch / "file").write_text("y")
    (scratch / "link").symlink_to(tmp_path)
    empty_directory(str(scratch))
    assert scratch.is_dir() and list(scratch.iterdir()) == []
    assert tmp_path.is_dir()


# --- The sandbox function ----------------------------------------------------------------------


def _invoke_handler(event: Any) -> dict[str, Any]:
    from functions.workflows.run_code import handler

    result = handler(event, LocalContext("workflow-code", 1769, 45))
    assert isinstance(result, dict)
    # What Lambda would send back: JSON.
    return dict(json.loads(json.dumps(result)))


def test_the_handler_answers_outputs_or_a_structured_error() -> None:
    ok = _invoke_handler(CodeRequest("def main(a):\n    print('hi')\n    return {'a': a}\n", {"a": [1]},
                                     FAST).to_wire())
    assert ok["outputs"] == {"a": [1]} and ok["stdout"] == "hi\n" and ok["stdout_truncated"] is False
    assert isinstance(ok["cpu_ms"], int)
    failed = _invoke_handler(CodeRequest("def main():\n    raise KeyError('k')\n", {}, FAST).to_wire())
    assert failed["error"]["code"] == "code_raised" and failed["error"]["details"]["error_type"] == "KeyError"
    malformed = _invoke_handler({"code": "def main(): pass", "limits": {"cpu_seconds": 9999}})
    assert malformed["error"]["code"] == "code_input_invalid" and "cpu_seconds" in malformed["error"]["message"]


def test_the_handler_empties_its_scratch_directory_after_every_run(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("WORKFLOW_CODE_WIPE_DIR", str(scratch))
    reset_settings()
    try:
        # The code writes beside its working directory, where the next run could find it.
        code = "import os\ndef main():\n    open('../left-by-a-tenant', 'w').write('x')\n" \
               "    return {'listed': sorted(os.listdir('..'))}\n"
        answer = _invoke_handler(CodeRequest(code, {}, FAST).to_wire())
        assert "left-by-a-tenant" in answer["outputs"]["listed"]
        assert list(scratch.iterdir()) == []
        failed = _invoke_handler(CodeRequest("def main():\n    open('../x', 'w')\n    1 / 0\n", {}, FAST).to_wire())
        assert failed["error"]["code"] == "code_raised" and list(scratch.iterdir()) == []
    finally:
        monkeypatch.delenv("WORKFLOW_CODE_WIPE_DIR")
        reset_settings()


@pytest.fixture(scope="module")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    aws = LocalAws(tmp_path_factory.mktemp("sandbox-aws"), LocalInvoker())
    aws.start()
    try:
        yield aws
    finally:
        aws.stop()


def test_the_lambda_runner_runs_code_on_the_sandbox_function(local_aws: LocalAws) -> None:
    remote = LambdaCodeRunner(lambda: client("lambda"), local_aws.function_arn("workflow-code"))
    run = remote.execute(CodeRequest("def main(arg1, arg2):\n    print('in lambda')\n    return {'sum': arg1 + arg2}\n",
                                     {"arg1": 40, "arg2": 2}, FAST))
    assert run.outputs == {"sum": 42} and run.stdout == "in lambda\n" and run.cpu_ms is not None
    error = _fails_remotely(remote, "def main():\n    x = [1]\n    return {'x': x[5]}\n")
    assert isinstance(error, CodeRaised) and error.error_type == "IndexError" and error.line == 3
    error = _fails_remotely(remote, "def main():\n    while True:\n        pass\n")
    assert isinstance(error, CodeTimeout) and error.details["limit"] == "cpu"
    error = _fails_remotely(remote, "import ctypes\ndef main():\n    return {}\n")
    assert isinstance(error, CodeForbidden)


def _fails_remotely(remote: LambdaCodeRunner, code: str) -> CodeError:
    with pytest.raises(CodeError) as info:
        remote.run(CodeRequest(code, {}, CPU_BOUND))
    return info.value
