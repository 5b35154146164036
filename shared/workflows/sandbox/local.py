"""The sandbox as a child process: a fresh ``python -I -S`` per run (``child.py`` run by path) in
a fresh working directory, with an empty environment, kernel limits, a wall-clock deadline that
kills its process group, and every pipe read with a cap.

The local runtime runs code nodes on it directly; in AWS the sandbox function runs it
(functions/workflows/run_code.py). Locally it isolates nothing beyond the limits: the code runs
as the platform's user, with its network (docs/workflows-code-sandbox.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.workflows.sandbox.ports import (
    STDOUT_BYTES,
    CodeCrashed,
    CodeError,
    CodeMemoryExceeded,
    CodeOutputTooLarge,
    CodeRequest,
    CodeRun,
    CodeSandboxUnavailable,
    CodeTimeout,
    error_from_wire,
)

logger = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("child.py")
# Room in the result pipe beyond the output limit for the answer's own envelope (an error's
# message and details); past it the child is killed as producing too much.
_ENVELOPE_BYTES = 64 * 1024
# What the interpreter itself writes to stderr (a fatal error), kept for the platform's log only.
_STDERR_BYTES = 8 * 1024
_READ_CHUNK = 64 * 1024
# The errors child.py answers with.
_CHILD_ERRORS = frozenset({"code_invalid", "code_raised", "code_memory_exceeded", "code_forbidden",
                           "code_output_too_large"})


@dataclass
class _Capture:
    limit: int
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[:max(room, 0)]
        self.data += chunk

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class _OverLimit(Exception):
    pass


class SubprocessCodeRunner:
    """Runs each request in a new interpreter; ``python`` is the interpreter to run (this one by
    default), ``scratch_dir`` where the per-run working directories are made (the system's temp
    directory by default)."""

    def __init__(self, python: str | None = None, scratch_dir: str | None = None) -> None:
        self._python = python or sys.executable
        self._scratch_dir = scratch_dir

    def run(self, request: CodeRequest) -> dict[str, Any]:
        return self.execute(request).outputs

    def execute(self, request: CodeRequest) -> CodeRun:
        payload = request.encoded()
        workdir = tempfile.mkdtemp(prefix="stratus-code-", dir=self._scratch_dir)
        try:
            return self._execute(request, payload, workdir)
        finally:
            _remove_tree(workdir)

    def _execute(self, request: CodeRequest, payload: bytes, workdir: str) -> CodeRun:
        limits = request.limits
        result_read, result_write = os.pipe()
        started = time.monotonic()
        try:
            process = subprocess.Popen(  # noqa: S603 - a fixed argv: this interpreter and child.py
                [self._python, "-I", "-S", "-B", "-X", "utf8", str(CHILD), str(result_write),
                 str(limits.cpu_seconds), str(limits.memory_mb), str(limits.output_bytes)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(result_write,), cwd=workdir, env=_environment(workdir),
                # Its own process group, so the deadline kills whatever it left behind too.
                process_group=0,
            )
        except OSError as exc:
            os.close(result_read)
            os.close(result_write)
            raise CodeSandboxUnavailable(f"the code sandbox could not start an interpreter ({exc.strerror}); "
                                         "run the node again, and report it if it persists") from exc
        os.close(result_write)
        stdout = _Capture(STDOUT_BYTES)
        stderr = _Capture(_STDERR_BYTES)
        result = _Capture(limits.output_bytes + _ENVELOPE_BYTES)
        deadline = started + limits.wall_seconds
        timed_out = over_limit = completed = False
        try:
            _pump(process, payload, result_read, stdout, stderr, result, deadline)
            completed = True
        except TimeoutError:
            timed_out = True
        except _OverLimit:
            over_limit = True
        finally:
            if not completed:
                _kill_group(process.pid)
            status, cpu_ms = _reap(process, deadline)
            # Whatever the code left running in its group ends with the run.
            _kill_group(process.pid)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
            os.close(result_read)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        log = stdout.text()
        if timed_out or status is None:
            raise CodeTimeout(f"the code ran longer than its {limits.wall_seconds} s (wall clock, waiting included); "
                              "make it finish sooner (e.g. smaller input, no sleeping or waiting on slow services)",
                              stdout=log, limit="wall", seconds=limits.wall_seconds)
        if over_limit:
            raise CodeOutputTooLarge(f"the code wrote more than {limits.output_bytes} bytes of result; "
                                     "return less (e.g. a summary, or fewer items)",
                                     stdout=log, limit_bytes=limits.output_bytes)
        answer = _answer(result)
        if answer is None:
            raise _without_answer(status, cpu_ms, stderr, limits.cpu_seconds, limits.memory_mb, log, process.pid)
        error = error_from_wire(answer["error"]) if "error" in answer else None
        outputs = answer.get("outputs")
        if (error is None and not isinstance(outputs, dict)) or (error is not None and error.code not in _CHILD_ERRORS):
            # Not an answer child.py gives: only the code could have written it (the result pipe
            # is open to it), so it is the code's own run that failed.
            raise CodeCrashed("the code wrote an answer of its own to the sandbox's result pipe; let main return "
                              "its dict instead", stdout=log)
        if error is not None:
            error.stdout = log
            raise error
        assert isinstance(outputs, dict)
        return CodeRun(outputs=outputs, stdout=log, stdout_truncated=stdout.truncated, cpu_ms=cpu_ms,
                       elapsed_ms=elapsed_ms)


def _environment(workdir: str) -> dict[str, str]:
    """Nothing of the platform's environment (its secrets live there): only a home and a temp
    directory, both the run's working directory."""
    return {"HOME": workdir, "TMPDIR": workdir, "LC_ALL": "C.UTF-8"}


def _pump(process: subprocess.Popen[bytes], payload: bytes, result_fd: int, stdout: _Capture, stderr: _Capture,
          result: _Capture, deadline: float) -> None:
    """Write the request to the child's stdin and read its three outputs until they close.
    Raises TimeoutError at the deadline, _OverLimit when the result passes its cap (the
    stdout and stderr logs only stop growing)."""
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    outputs = {process.stdout.fileno(): stdout, process.stderr.fileno(): stderr, result_fd: result}
    stdin_fd = process.stdin.fileno()
    os.set_blocking(stdin_fd, False)
    pending = memoryview(payload)
    with selectors.DefaultSelector() as selector:
        selector.register(stdin_fd, selectors.EVENT_WRITE)
        for fd in outputs:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            for key, _ in selector.select(remaining):
                fd = int(key.fd)
                if fd == stdin_fd:
                    try:
                        written = os.write(fd, pending[:_READ_CHUNK])
                    except BrokenPipeError:  # it ended before reading its request: its exit says why
                        written = len(pending)
                    pending = pending[written:]
                    if not pending:
                        selector.unregister(fd)
                        process.stdin.close()
                    continue
                chunk = os.read(fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(fd)
                    continue
                capture = outputs[fd]
                capture.add(chunk)
                if capture is result and capture.truncated:
                    raise _OverLimit


def _reap(process: subprocess.Popen[bytes], deadline: float) -> tuple[int | None, int | None]:
    """Wait for the child until the deadline; (its exit status as subprocess reports it, the CPU
    time it used in ms), or (None, None) when it outlived the deadline and was killed."""
    delay = 0.001
    killed = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            cpu_ms = int((usage.ru_utime + usage.ru_stime) * 1000)
            return (None, cpu_ms) if killed else (process.returncode, cpu_ms)
        if not killed and time.monotonic() >= deadline:
            # Its pipes are closed but it still runs: the deadline applies all the same.
            _kill_group(process.pid)
            killed = True
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _answer(result: _Capture) -> dict[str, Any] | None:
    if not result.data:
        return None
    try:
        answer = json.loads(result.data)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _without_answer(status: int, cpu_ms: int | None, stderr: _Capture, cpu_seconds: int, memory_mb: int,
                    log: str, pid: int) -> CodeError:
    """Why a child that ended without an answer ended, from its exit status."""
    cpu_spent = cpu_ms is not None and cpu_ms >= cpu_seconds * 1000
    # SIGXCPU at the soft CPU limit; SIGKILL at the hard one, a second later, if it ignored the first.
    if status == -signal.SIGXCPU or (status == -signal.SIGKILL and cpu_spent):
        return CodeTimeout(f"the code used more than its {cpu_seconds} s of CPU time; make it do less work per run "
                           "(e.g. smaller input, a faster algorithm)", stdout=log, limit="cpu", seconds=cpu_seconds)
    if b"MemoryError" in stderr.data:
        return CodeMemoryExceeded(f"the code needed more than its {memory_mb} MiB of memory; process less data per "
                                  "run or ask for a larger memory limit", stdout=log, memory_mb=memory_mb)
    # The interpreter's own words stay in the platform's log: they may name its paths.
    logger.warning("code sandbox child %s ended with status %s and no answer; stderr: %s", pid, status,
                   stderr.text()[-2000:])
    if status < 0:
        return CodeCrashed(f"the code's interpreter was ended by signal {-status} before main returned (e.g. killed "
                           "for lack of memory, or a crash in native code); make the code lighter", stdout=log,
                           signal=-status)
    return CodeCrashed(f"the code's interpreter exited with status {status} before main returned (e.g. os._exit "
                       "in the code); let main return its dict instead", stdout=log, exit_status=status)


def _remove_tree(path: str) -> None:
    """Remove a run's working directory, whatever the code did to the permissions inside it."""

    def retry_writable(function: Any, target: str, _error: Any) -> None:
        try:
            os.chmod(os.path.dirname(target), 0o700)
            if os.path.isdir(target) and not os.path.islink(target):
                os.chmod(target, 0o700)
                shutil.rmtree(target, ignore_errors=True)
            else:
                function(target)
        except OSError:
            logger.warning("could not remove %s from a code run's working directory", target)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry_writable)
    else:
        shutil.rmtree(path, onerror=retry_writable)


def empty_directory(path: str) -> None:
    """Remove everything inside ``path`` (the sandbox function's /tmp between runs), leaving
    ``path`` itself."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        logger.warning("could not list %s to empty it", path)
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                _remove_tree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            logger.warning("could not remove %s while emptying %s", entry.path, path)
