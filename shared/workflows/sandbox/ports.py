"""What the code node asks of a sandbox: run ``main(**inputs)`` of some Python under limits and
hand back the dict it returned, or a :class:`CodeError` whose ``code`` says what went wrong.

Two runners keep this contract: ``local.SubprocessCodeRunner`` (a fresh interpreter in a child
process) and ``remote.LambdaCodeRunner`` (the same, inside the sandbox Lambda function). Errors
cross the Lambda boundary as ``{"code", "message", "details", "stdout"}`` (:meth:`CodeError.to_wire`)
and come back as the same class (:func:`error_from_wire`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

MIB = 1024 * 1024

# The most a workflow may ask for. The sandbox function is sized for them (its catalog entry).
MAX_CPU_SECONDS = 30
MAX_WALL_SECONDS = 30
MAX_MEMORY_MB = 1024
MAX_OUTPUT_BYTES = 2 * MIB
# What the code may print, kept as a log beside the outputs (never in them); the rest is dropped.
STDOUT_BYTES = 64 * 1024
# The code and its inputs as JSON: Lambda takes at most 6 MB per synchronous invocation.
MAX_REQUEST_BYTES = 5 * MIB

# The sandbox function (functions/catalog/workflows.py). 1769 MB is one full vCPU, so a second
# of CPU time there takes a second of wall time, as it does locally; the timeout covers the
# longest wall limit plus starting an interpreter.
SANDBOX_MEMORY_MB = 1769
SANDBOX_TIMEOUT_S = MAX_WALL_SECONDS + 15


@dataclass(frozen=True)
class CodeLimits:
    """Per run. CPU time counts only computing; wall time also counts sleeping and waiting."""

    cpu_seconds: int = 5
    wall_seconds: int = 10
    memory_mb: int = 256
    output_bytes: int = MIB

    def __post_init__(self) -> None:
        bounds = {"cpu_seconds": (1, MAX_CPU_SECONDS), "wall_seconds": (1, MAX_WALL_SECONDS),
                  "memory_mb": (64, MAX_MEMORY_MB), "output_bytes": (1024, MAX_OUTPUT_BYTES)}
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"code limit {name} must be an integer from {low} to {high}, got {value!r}")

    def to_wire(self) -> dict[str, int]:
        return {"cpu_seconds": self.cpu_seconds, "wall_seconds": self.wall_seconds,
                "memory_mb": self.memory_mb, "output_bytes": self.output_bytes}


@dataclass(frozen=True)
class CodeRequest:
    """``code`` defines ``main``; it is called as ``main(**inputs)`` (Dify's code node)."""

    code: str
    inputs: Mapping[str, Any]
    limits: CodeLimits = field(default_factory=CodeLimits)

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "inputs": dict(self.inputs), "limits": self.limits.to_wire()}

    def encoded(self) -> bytes:
        """The request as the JSON a sandbox reads, checked against :data:`MAX_REQUEST_BYTES`."""
        try:
            data = json.dumps(self.to_wire(), ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise CodeInputInvalid(f"the code node's inputs are not JSON ({exc}); pass strings, numbers, "
                                   "booleans, null, arrays and objects only") from None
        if len(data) > MAX_REQUEST_BYTES:
            raise CodeInputInvalid(f"the code and its inputs take {len(data)} bytes as JSON, over the sandbox's "
                                   f"{MAX_REQUEST_BYTES}; pass smaller inputs (e.g. an id to fetch with an HTTP "
                                   "request node, not the whole document)")
        return data

    @classmethod
    def from_wire(cls, payload: Any) -> CodeRequest:
        """The request a sandbox function was sent; CodeInputInvalid names what is wrong with it."""
        if not isinstance(payload, Mapping):
            raise CodeInputInvalid(f"a code request is a JSON object, got {type(payload).__name__}")
        unknown = sorted(set(payload) - {"code", "inputs", "limits"})
        if unknown:
            raise CodeInputInvalid(f"a code request has only code, inputs and limits, not {', '.join(unknown)}")
        code, inputs, limits = payload.get("code"), payload.get("inputs", {}), payload.get("limits", {})
        if not isinstance(code, str):
            raise CodeInputInvalid("a code request needs code: the Python source, as a string")
        if not isinstance(inputs, Mapping) or not all(isinstance(k, str) for k in inputs):
            raise CodeInputInvalid("a code request's inputs are an object of named values")
        if not isinstance(limits, Mapping) or set(limits) - set(CodeLimits.__dataclass_fields__):
            raise CodeInputInvalid(f"a code request's limits take only {', '.join(CodeLimits.__dataclass_fields__)}")
        try:
            return cls(code, dict(inputs), CodeLimits(**limits))
        except (TypeError, ValueError) as exc:
            raise CodeInputInvalid(str(exc)) from None


@dataclass(frozen=True)
class CodeRun:
    """A run that returned: ``outputs`` is the dict ``main`` returned; ``stdout`` what it printed."""

    outputs: dict[str, Any]
    stdout: str = ""
    stdout_truncated: bool = False
    cpu_ms: int | None = None
    elapsed_ms: int | None = None


class CodeRunner(Protocol):
    def run(self, request: CodeRequest) -> dict[str, Any]:
        """The dict ``main`` returned (not yet checked against the node's declared outputs:
        ``outputs.check_outputs``); raises a :class:`CodeError`."""
        ...


# --- Errors ---------------------------------------------------------------------------------


class CodeError(Exception):
    """The code did not give a usable result. ``code`` is stable (clients match on it);
    ``details`` are JSON values; ``stdout`` is what the code printed before it failed."""

    code: ClassVar[str] = "code_error"
    # Worth trying again unchanged (the sandbox was busy or unreachable, not the code's fault).
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, stdout: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.stdout = stdout
        self.details = {k: v for k, v in details.items() if v is not None}

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details, "stdout": self.stdout}


class CodeTimeout(CodeError):
    """details: ``limit`` ("cpu" or "wall"), ``seconds``."""

    code = "code_timeout"


class CodeMemoryExceeded(CodeError):
    """details: ``memory_mb``."""

    code = "code_memory_exceeded"


class CodeOutputTooLarge(CodeError):
    """details: ``limit_bytes`` and, when measured, ``bytes``."""

    code = "code_output_too_large"


class CodeRaised(CodeError):
    """The user's code raised. details: ``error_type``, ``error_message``, ``line`` (in the
    code) and ``traceback``: the last frames of the user's code only, never platform paths."""

    code = "code_raised"

    @property
    def error_type(self) -> str:
        return str(self.details.get("error_type", ""))

    @property
    def line(self) -> int | None:
        line = self.details.get("line")
        return line if isinstance(line, int) else None


class CodeInvalid(CodeError):
    """The code cannot be run as a code node: a syntax error (details: ``line``), no callable
    ``main``, ``main`` refusing the inputs, or a result that is not a JSON object. details:
    ``reason``."""

    code = "code_invalid"

    @property
    def line(self) -> int | None:
        line = self.details.get("line")
        return line if isinstance(line, int) else None


class CodeForbidden(CodeError):
    """The code tried something the sandbox refuses (details: ``operation``)."""

    code = "code_forbidden"


class CodeCrashed(CodeError):
    """The interpreter ended without an answer (details: ``exit_status`` or ``signal``)."""

    code = "code_crashed"


class CodeInputInvalid(CodeError):
    """The request cannot be sent: inputs that are not JSON, or too large."""

    code = "code_input_invalid"


class CodeOutputInvalid(CodeError):
    """``main``'s result does not match the node's declared outputs (details: ``output``, the
    key path, e.g. ``items[2].name``)."""

    code = "code_output_invalid"

    @property
    def output(self) -> str:
        return str(self.details.get("output", ""))


class CodeSandboxUnavailable(CodeError):
    """The sandbox could not run the code (throttled, unreachable, or it failed itself)."""

    code = "code_sandbox_unavailable"
    retryable = True


ERRORS: dict[str, type[CodeError]] = {cls.code: cls for cls in (
    CodeTimeout, CodeMemoryExceeded, CodeOutputTooLarge, CodeRaised, CodeInvalid, CodeForbidden, CodeCrashed,
    CodeInputInvalid, CodeOutputInvalid, CodeSandboxUnavailable)}


def error_from_wire(error: Any) -> CodeError:
    """The CodeError a sandbox answered with (``CodeError.to_wire``); an answer that is not one
    is the sandbox's failure."""
    if not isinstance(error, Mapping) or not isinstance(error.get("message"), str):
        return CodeSandboxUnavailable("the code sandbox answered with an error it did not describe; "
                                      "run the node again, and report it if it persists", answer=repr(error)[:200])
    cls = ERRORS.get(str(error.get("code")))
    details = error.get("details")
    stdout = error.get("stdout")
    if cls is None:
        return CodeSandboxUnavailable(f"the code sandbox answered with an unknown error: {error['message']}",
                                      sandbox_code=str(error.get("code")))
    result = cls(error["message"], stdout=stdout if isinstance(stdout, str) else "")
    if isinstance(details, Mapping):
        result.details = {str(key): value for key, value in details.items() if value is not None}
    return result
