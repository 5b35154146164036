"""The program a sandbox child process runs: ``python -I -S -X utf8 child.py <result fd> <cpu s> <memory MiB>
<output bytes>``. Run by path, never imported by the platform: it sees only the standard library
(``-I -S``: no site-packages, no environment variables, not even this package).

It reads ``{"code", "inputs"}`` as JSON from stdin, sets the kernel limits on itself, installs the
audit hook, runs ``main(**inputs)``, and writes one JSON object to the result fd:
``{"outputs": {...}}`` or ``{"error": {"code", "message", "details"}}``. What the code prints
goes to stdout (a log the parent caps); nothing the code prints can corrupt the result.

What is refused and why: docs/workflows-code-sandbox.md.
"""

import contextlib
import gc
import io
import json
import linecache
import os
import resource
import signal
import sys

FILENAME = "<code>"
# Largest file the code may write in its working directory.
FILE_BYTES = 16 * 1024 * 1024
# Open files at once (stdio, the result pipe, a few of the code's own).
OPEN_FILES = 64
# Frames of the user's traceback kept in an error, and characters of its message.
TRACEBACK_FRAMES = 5
MESSAGE_CHARS = 2000


class SandboxRefused(PermissionError):
    """Raised into the code by the audit hook."""


# Audit events (https://docs.python.org/3/library/audit_events.html) refused outright, with why.
# Tuples and frozensets: the hook holds them, and the code can reach them but not change them.
_PROCESSES = ("starting processes", "compute the result in Python inside main (an HTTP request node reaches "
              "other services)")
_NATIVE = ("loading native code", "use the standard library's Python modules")
_LIMITS = ("changing the sandbox's limits", "ask for larger limits on the node instead")
_REFUSED = (
    ("os.system", *_PROCESSES),
    ("os.exec", *_PROCESSES),
    ("os.posix_spawn", *_PROCESSES),
    ("os.spawn", *_PROCESSES),
    ("os.fork", *_PROCESSES),
    ("os.forkpty", *_PROCESSES),
    ("subprocess.Popen", *_PROCESSES),
    ("os.kill", "signalling other processes", "leave other processes alone"),
    ("os.killpg", "signalling other processes", "leave other processes alone"),
    ("signal.pthread_kill", "signalling threads", "leave other threads alone"),
    ("resource.setrlimit", *_LIMITS),
    ("resource.prlimit", *_LIMITS),
    ("ctypes.dlopen", *_NATIVE),
    ("ctypes.dlsym", *_NATIVE),
    ("ctypes.call_function", *_NATIVE),
    ("sys.addaudithook", "changing the sandbox's audit hooks", "leave them as they are"),
)
_REFUSED_EVENTS = frozenset(refused[0] for refused in _REFUSED)
# Modules whose import is refused: ctypes calls native code, which no check in Python sees.
_REFUSED_IMPORTS = frozenset({"ctypes", "_ctypes"})
# Function attributes whose change would rewrite a function in place (the hook's among them).
_FUNCTION_INTERNALS = frozenset({"__code__", "__defaults__", "__kwdefaults__"})


def _install_audit_hook() -> None:
    own_pid = os.getpid()

    # Everything the hook reads is bound as a default now, and it calls no builtin: the code
    # can rebind module globals and builtins, but not these (changing __defaults__ is refused).
    def hook(event: str, args: tuple, _events: frozenset = _REFUSED_EVENTS, _reasons: tuple = _REFUSED,
             _imports: frozenset = _REFUSED_IMPORTS, _internals: frozenset = _FUNCTION_INTERNALS,
             _error: type = SandboxRefused, _pid: int = own_pid) -> None:
        if event in _events:
            if event in ("os.kill", "os.killpg") and args[:1] and args[0] in (0, _pid):
                return  # itself (its process group holds only itself)
            for refused, what, advice in _reasons:
                if refused == event:
                    raise _error(f"{event}: {what} is not allowed in the code sandbox; {advice}")
        elif event == "import" and args[:1] and args[0] in _imports:
            raise _error(f"import {args[0]}: loading native code is not allowed in the code sandbox; use the "
                         "standard library's Python modules")
        elif event == "object.__setattr__" and args[1:2] and args[1] in _internals:
            raise _error(f"setting {args[1]}: rewriting functions in place is not allowed in the code sandbox; "
                         "define a new function instead")

    sys.addaudithook(hook)


def _limit(cpu_seconds: int, memory_mb: int) -> None:
    """Kernel limits on this process, lowered soft and hard (the code cannot raise them back
    unless the platform runs as root, where the audit hook refuses it)."""
    # The soft limit sends SIGXCPU, which ends the process; the hard one a second later, SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # No new processes or threads: a child process would escape the CPU and memory accounting
    # and could outlive the run. Root is exempt from this one: the audit hook still refuses
    # processes, but Python raises no audit event for a thread, so as root threads start.
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    # Past RLIMIT_FSIZE a write fails with an error the code sees, instead of killing it.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _error(code: str, message: str, **details: object) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "…"


def _user_frames(exc: BaseException) -> list:
    """(line, function, source) of the traceback's frames in the user's code, innermost last."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == FILENAME:
            line = tb.tb_lineno
            frames.append((line, code.co_name, linecache.getline(FILENAME, line).strip()))
        tb = tb.tb_next
    return frames


def _describe(exc: BaseException) -> str:
    try:
        return _clip(str(exc))
    except Exception:  # the code's own exception class may fail to print itself
        return "(the exception's message could not be read)"


def _failure(exc: BaseException, memory_mb: int, phase: str) -> dict:
    """The error for an exception that left the user's code (``phase``: "running the code" or
    "calling main")."""
    if isinstance(exc, MemoryError):
        return _error("code_memory_exceeded",
                      f"the code needed more than its {memory_mb} MiB of memory; process less data per run "
                      "(e.g. split the input) or ask for a larger memory limit", memory_mb=memory_mb)
    if isinstance(exc, SandboxRefused):
        message = _describe(exc)
        return _error("code_forbidden", message, operation=message.split(":", 1)[0])
    frames = _user_frames(exc)
    name = type(exc).__name__
    message = _describe(exc)
    if not frames and phase == "calling main" and isinstance(exc, TypeError):
        return _error("code_invalid", f"main cannot take the node's inputs: {message}; name main's parameters "
                      "after the node's input variables (def main(arg1, arg2) -> dict)", reason="signature")
    line = frames[-1][0] if frames else None
    where = f" at line {line}" if line is not None else ""
    return _error("code_raised", f"{phase} raised {name}{where}: {message}; fix the code, or catch the error in "
                  "main and return a value that says what happened",
                  error_type=name, error_message=message, line=line,
                  traceback=[f'line {ln}, in {fn}: {src}' for ln, fn, src in frames[-TRACEBACK_FRAMES:]]
                  + [f"{name}: {message}"])


def _run(request: dict, memory_mb: int, output_bytes: int) -> dict:
    code = request["code"]
    inputs = request["inputs"]
    try:
        compiled = compile(code, FILENAME, "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = exc.lineno
        text = (exc.text or "").strip()
        shown = f" (`{_clip(text)}`)" if text else ""
        return _error("code_invalid", f"the code does not compile: {exc.msg} at line {line}{shown}; fix the syntax",
                      reason="syntax", line=line)
    except ValueError as exc:  # a NUL character in the source
        return _error("code_invalid", f"the code does not compile: {_describe(exc)}; remove the NUL characters",
                      reason="syntax")
    except MemoryError as exc:
        return _failure(exc, memory_mb, "compiling the code")
    # So that tracebacks show the user's lines.
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compiled, namespace)  # noqa: S102 - this process exists to run it
    except BaseException as exc:
        namespace.clear()
        return _failure(exc, memory_mb, "running the code")
    main = namespace.get("main")
    if main is None:
        return _error("code_invalid", "the code defines no main function; define def main(...) -> dict, which the "
                      "node calls with its input variables as keyword arguments", reason="no_main")
    if not callable(main):
        return _error("code_invalid", f"main is a {type(main).__name__}, not a function; define def main(...) -> dict",
                      reason="not_callable")
    try:
        result = main(**inputs)
    except BaseException as exc:
        namespace.clear()
        return _failure(exc, memory_mb, "calling main")
    if not isinstance(result, dict):
        return _error("code_invalid", f"main returned {type(result).__name__}, not a dict; return a dict whose keys "
                      "are the node's output variables", reason="not_dict")
    bad_keys = [repr(key) for key in result if not isinstance(key, str)]
    if bad_keys:
        listed = ", ".join(bad_keys[:5])
        return _error("code_invalid", f"main returned a dict with keys that are not strings ({listed}); name each "
                      "output with a string", reason="keys")
    try:
        data = json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return _error("code_invalid", f"main's result is not JSON: {_describe(exc)}; return only strings, numbers, "
                      "booleans, None, lists and dicts (no sets, bytes, dates, NaN or infinity)", reason="not_json")
    except MemoryError as exc:
        return _failure(exc, memory_mb, "encoding main's result")
    size = len(data.encode("utf-8"))
    if size > output_bytes:
        return _error("code_output_too_large", f"main's result is {size} bytes as JSON, over the limit of "
                      f"{output_bytes}; return less (e.g. a summary, or fewer items)", bytes=size,
                      limit_bytes=output_bytes)
    return {"outputs": result}


def _write(fd: int, answer: dict) -> None:
    data = json.dumps(answer, ensure_ascii=False, allow_nan=False).encode("utf-8")
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.close(fd)


def main() -> None:
    result_fd, cpu_seconds, memory_mb, output_bytes = (int(arg) for arg in sys.argv[1:5])
    request = json.loads(sys.stdin.buffer.read())
    _limit(cpu_seconds, memory_mb)
    _install_audit_hook()
    # What the code writes to stderr (warnings, print(file=sys.stderr)) joins its log; fd 2
    # itself stays the interpreter's (fatal errors), which the parent keeps out of the log.
    sys.stderr = sys.stdout
    # Line by line, so what it printed before a limit stopped it reaches the log.
    stdout = sys.stdout
    if isinstance(stdout, io.TextIOWrapper):
        stdout.reconfigure(line_buffering=True)
    try:
        answer = _run(request, memory_mb, output_bytes)
    except MemoryError:
        gc.collect()
        answer = _error("code_memory_exceeded", f"the code needed more than its {memory_mb} MiB of memory; process "
                        "less data per run or ask for a larger memory limit", memory_mb=memory_mb)
    # The code may have closed or broken its stdout: then the log is lost, not the answer.
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    # From here on a failure (MemoryError while encoding) is the interpreter's, for the parent.
    sys.stderr = sys.__stderr__
    _write(result_fd, answer)


if __name__ == "__main__":
    main()
