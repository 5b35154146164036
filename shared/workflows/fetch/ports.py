"""The fetch port: what an HTTP-request node asks for, what it gets back, and how it fails.

A request and its answer cross a Lambda invocation in AWS (the fetch function runs outside
the VPC: functions/workflows/fetch.py), so each has a JSON wire form, bodies in base64. The
answer is ``{"ok": true, "response": ...}`` or ``{"ok": false, "error": {"code", "message"}}``:
a failed fetch is an answer, not a Lambda error, so the caller tells the tenant's failure
(refused, timed out, too large, unreachable) from the platform's.

Import-light: the standard library only (the engine imports it on every node run).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
# Beyond any node's settings (configs.HttpRequestConfig): a malformed wire request, not a
# tenant's choice.
_MAX_REDIRECTS_LIMIT = 30


# --- errors ---------------------------------------------------------------------------------


class FetchError(Exception):
    """A fetch that produced no response; ``code`` says which kind (the subclasses), ``message``
    what happened and what to do about it."""

    code: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

    @staticmethod
    def from_json(data: Any) -> FetchError:
        """The error a wire answer names: its subclass when the code is known."""
        fields = _mapping(data, "error")
        code = _string(fields, "code", "error")
        message = _string(fields, "message", "error")
        if code == FetchRefused.CODE:
            return FetchRefused(message, rule=_optional_string(fields, "rule", "error"),
                                host=_optional_string(fields, "host", "error"))
        kind = _BY_CODE.get(code)
        return kind(message) if kind is not None else FetchError(code, message)


class FetchRefused(FetchError):
    """The egress policy refused a destination (the first one or a redirect's): ``rule`` names
    why (``metadata``, ``loopback``, ``private``...), ``host`` the destination."""

    CODE: ClassVar[str] = "http_request_refused"

    def __init__(self, message: str, *, rule: str | None = None, host: str | None = None) -> None:
        super().__init__(self.CODE, message)
        self.rule = rule
        self.host = host

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        if self.rule is not None:
            data["rule"] = self.rule
        if self.host is not None:
            data["host"] = self.host
        return data


class FetchTimeout(FetchError):
    """Connecting, sending or reading took longer than the request's timeouts allow."""

    CODE: ClassVar[str] = "http_request_timeout"

    def __init__(self, message: str) -> None:
        super().__init__(self.CODE, message)


class FetchTooLarge(FetchError):
    """The response body is over the request's ``max_response_bytes`` (reading stopped there)."""

    CODE: ClassVar[str] = "http_request_response_too_large"

    def __init__(self, message: str) -> None:
        super().__init__(self.CODE, message)


class FetchFailed(FetchError):
    """No response: an invalid URL or scheme (only http and https), a connection or TLS failure,
    a broken response, too many redirects, or the fetch function itself failing."""

    CODE: ClassVar[str] = "http_request_failed"

    def __init__(self, message: str) -> None:
        super().__init__(self.CODE, message)


# The errors a code names (a refusal's rule and host are read apart).
_BY_CODE: dict[str, Callable[[str], FetchError]] = {
    FetchTimeout.CODE: FetchTimeout, FetchTooLarge.CODE: FetchTooLarge, FetchFailed.CODE: FetchFailed}


# --- request and response -------------------------------------------------------------------


@dataclass(frozen=True)
class FetchTimeouts:
    """Seconds: to connect, between two reads, and to send a piece of the body; ``total_s``
    bounds the whole exchange (redirects and body included) when set."""

    connect_s: float = 10.0
    read_s: float = 60.0
    write_s: float = 20.0
    total_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect_s", "read_s", "write_s", "total_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"timeouts.{name} must be positive, not {value!r}")

    def to_json(self) -> dict[str, Any]:
        return {"connect_s": self.connect_s, "read_s": self.read_s, "write_s": self.write_s,
                "total_s": self.total_s}

    @classmethod
    def from_json(cls, data: Any) -> FetchTimeouts:
        fields = _mapping(data, "timeouts")
        total = fields.get("total_s")
        return cls(connect_s=_number(fields, "connect_s", "timeouts"), read_s=_number(fields, "read_s", "timeouts"),
                   write_s=_number(fields, "write_s", "timeouts"),
                   total_s=None if total is None else _number(fields, "total_s", "timeouts"))


@dataclass(frozen=True)
class FetchRequest:
    """One HTTP request as a node rendered it. ``headers`` and ``params`` are pairs (a name may
    repeat); ``params`` are added to the URL's own query."""

    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    timeouts: FetchTimeouts = field(default_factory=FetchTimeouts)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    follow_redirects: bool = True
    max_redirects: int = DEFAULT_MAX_REDIRECTS

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.max_response_bytes < 1:
            raise ValueError("max_response_bytes must be at least 1")
        if not 0 <= self.max_redirects <= _MAX_REDIRECTS_LIMIT:
            raise ValueError(f"max_redirects must be between 0 and {_MAX_REDIRECTS_LIMIT}")

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "headers": [[name, value] for name, value in self.headers],
            "params": [[name, value] for name, value in self.params],
            "body": None if self.body is None else _b64(self.body),
            "timeouts": self.timeouts.to_json(),
            "max_response_bytes": self.max_response_bytes,
            "follow_redirects": self.follow_redirects,
            "max_redirects": self.max_redirects,
        }

    @classmethod
    def from_json(cls, data: Any) -> FetchRequest:
        """The request a wire form holds; ValueError naming the field when it is malformed."""
        fields = _mapping(data, "request")
        body = fields.get("body")
        return cls(
            method=_string(fields, "method", "request"),
            url=_string(fields, "url", "request"),
            headers=_pairs(fields.get("headers", []), "headers"),
            params=_pairs(fields.get("params", []), "params"),
            body=None if body is None else _unb64(body, "request.body"),
            timeouts=FetchTimeouts.from_json(fields.get("timeouts", {})) if "timeouts" in fields else FetchTimeouts(),
            max_response_bytes=_integer(fields, "max_response_bytes", "request", DEFAULT_MAX_RESPONSE_BYTES),
            follow_redirects=_boolean(fields, "follow_redirects", "request", True),
            max_redirects=_integer(fields, "max_redirects", "request", DEFAULT_MAX_REDIRECTS),
        )


@dataclass(frozen=True)
class FetchResponse:
    """What came back: ``headers`` with lower-cased names (a repeated header's values joined
    with ", "), the whole body (at most the request's ``max_response_bytes``, content-encoding
    undone) and the URL that answered (the last redirect's)."""

    status_code: int
    headers: dict[str, str]
    body: bytes
    url: str

    @property
    def text(self) -> str:
        """The body as text, in the charset the response names (UTF-8 otherwise); bytes that do
        not decode become U+FFFD rather than failing the node."""
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip().strip('"')
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")

    def to_json(self) -> dict[str, Any]:
        return {"status_code": self.status_code, "headers": dict(self.headers), "body": _b64(self.body),
                "url": self.url}

    @classmethod
    def from_json(cls, data: Any) -> FetchResponse:
        fields = _mapping(data, "response")
        headers = _mapping(fields.get("headers", {}), "response.headers")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise ValueError("response.headers must map names to strings")
        return cls(status_code=_integer(fields, "status_code", "response"), headers=dict(headers),
                   body=_unb64(fields.get("body", ""), "response.body"), url=_string(fields, "url", "response"))


class HttpFetcher(Protocol):
    def fetch(self, request: FetchRequest) -> FetchResponse:
        """The response, whatever its status code. Raises a FetchError subclass when there is none."""
        ...


# --- the answer on the wire -----------------------------------------------------------------


def to_answer(result: FetchResponse | FetchError) -> dict[str, Any]:
    if isinstance(result, FetchError):
        return {"ok": False, "error": result.to_json()}
    return {"ok": True, "response": result.to_json()}


def from_answer(answer: Any) -> FetchResponse:
    """The response an answer carries; raises the FetchError it carries instead. ValueError
    when it is neither."""
    fields = _mapping(answer, "answer")
    ok = fields.get("ok")
    if ok is True:
        return FetchResponse.from_json(fields.get("response"))
    if ok is False:
        raise FetchError.from_json(fields.get("error"))
    raise ValueError("answer.ok must be true or false")


# --- wire helpers ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where} is not valid base64") from None


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object")
    return value


_MISSING: Any = object()


def _get(fields: Mapping[str, Any], key: str, where: str, default: Any) -> Any:
    value = fields.get(key, default)
    if value is _MISSING:
        raise ValueError(f"{where}.{key} is required")
    return value


def _string(fields: Mapping[str, Any], key: str, where: str) -> str:
    value = _get(fields, key, where, _MISSING)
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key} must be a string")
    return value


def _optional_string(fields: Mapping[str, Any], key: str, where: str) -> str | None:
    value = fields.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}.{key} must be a string")
    return value


def _integer(fields: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> int:
    value = _get(fields, key, where, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}.{key} must be an integer")
    return value


def _number(fields: Mapping[str, Any], key: str, where: str) -> float:
    value = _get(fields, key, where, _MISSING)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}.{key} must be a number")
    return float(value)


def _boolean(fields: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> bool:
    value = _get(fields, key, where, default)
    if not isinstance(value, bool):
        raise ValueError(f"{where}.{key} must be true or false")
    return value


def _pairs(value: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise ValueError(f"request.{where} must be a list of [name, value] pairs")
    pairs: list[tuple[str, str]] = []
    for item in value:
        if not (isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(p, str) for p in item)):
            raise ValueError(f"request.{where} must be a list of [name, value] pairs of strings")
        pairs.append((item[0], item[1]))
    return pairs
