"""http_request: one HTTP request through the fetch path (:mod:`shared.workflows.fetch`: outside
the VPC in AWS, the egress policy refusing private and metadata addresses, also after redirects;
the response size capped).

The URL, header and parameter values, the body and the API key are templates
(``{{#node.field#}}``). Bodies: ``json`` (the rendered text must be JSON; sent re-serialised,
as Dify does), ``raw-text``, ``x-www-form-urlencoded`` and ``form-data`` (text fields), each
with its content type unless a header sets one. Authorization ``api-key``: ``bearer``
(``Bearer <key>``), ``basic`` (``Basic <key>``, the key base64-encoded when it is
``user:password``) or ``custom`` (the key as it is), in the header the node names.

Outputs ``status_code``, ``body`` (the text, decoded by the response's charset, else UTF-8,
undecodable bytes replaced) and ``headers`` (lower-case names). As in Dify, a status outside
2xx is an answer, not a failure — unless the node has a retry or an error strategy, which then
apply to it (``http_request_status_error``). Fetch errors keep their codes
(``http_request_refused``, ``http_request_timeout``, ``http_request_response_too_large``,
``http_request_failed``). The recorded inputs never hold the API key."""

from __future__ import annotations

import base64
import json
import secrets
import urllib.parse
from collections.abc import Callable
from typing import Any

from shared.workflows.configs import BodyField, HttpRequestConfig, KeyValue
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput

REDACTED = "[redacted]"
_DEFAULT_CONTENT_TYPE = {"json": "application/json", "raw-text": "text/plain",
                         "x-www-form-urlencoded": "application/x-www-form-urlencoded"}


def _fields(data: str | list[BodyField]) -> list[BodyField]:
    return [BodyField(value=data)] if isinstance(data, str) else list(data)


def _pairs(items: list[KeyValue], render: Callable[[str], str]) -> list[list[str]]:
    """Rendered name/value pairs; a name that renders empty is left out, as Dify does."""
    pairs = [[render(item.key).strip(), render(item.value)] for item in items]
    return [pair for pair in pairs if pair[0]]


def resolve(call: NodeCall[HttpRequestConfig]) -> dict[str, Any]:
    config, render = call.config, call.pool.render
    inputs: dict[str, Any] = {
        "method": config.method,
        "url": render(config.url).strip(),
        "headers": _pairs(config.headers, render),
        "params": _pairs(config.params, render),
    }
    auth = config.authorization
    if auth.type == "api-key":
        inputs["authorization"] = {"scheme": auth.scheme, "header": auth.header, "api_key": REDACTED}
    body = config.body
    if body.type in ("json", "raw-text"):
        fields = _fields(body.data)
        inputs["body"] = render(fields[0].value) if fields else ""
    elif body.type in ("x-www-form-urlencoded", "form-data"):
        inputs["body"] = [[render(field.key), render(field.value)] for field in _fields(body.data)]
    return inputs


def _authorization(call: NodeCall[HttpRequestConfig]) -> tuple[str, str]:
    auth = call.config.authorization
    key = call.pool.render(auth.api_key)
    if auth.scheme == "bearer":
        return auth.header, f"Bearer {key}"
    if auth.scheme == "basic":
        return auth.header, "Basic " + (base64.b64encode(key.encode()).decode() if ":" in key else key)
    return auth.header, key


def _body(kind: str, body: Any) -> tuple[bytes | None, str | None]:
    """The body's bytes and its content type."""
    if kind == "json":
        if not body.strip():
            return None, None
        try:
            value = json.loads(body, strict=False)
        except ValueError as exc:
            raise NodeFailure("http_request_invalid_body",
                              f"The JSON body is not valid JSON once rendered ({exc}); check the template "
                              "and quote text values") from exc
        return json.dumps(value, ensure_ascii=False).encode(), _DEFAULT_CONTENT_TYPE[kind]
    if kind == "raw-text":
        return body.encode(), _DEFAULT_CONTENT_TYPE[kind]
    if kind == "x-www-form-urlencoded":
        return urllib.parse.urlencode([(name, value) for name, value in body]).encode(), _DEFAULT_CONTENT_TYPE[kind]
    if kind == "form-data":
        boundary = secrets.token_hex(16)
        parts = [b"--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                 % (boundary.encode(), name.replace('"', "%22").encode(), value.encode()) for name, value in body]
        return b"".join(parts) + b"--%s--\r\n" % boundary.encode(), f"multipart/form-data; boundary={boundary}"
    return None, None


def decode(headers: dict[str, str], body: bytes) -> str:
    """The body as text: the charset the content type names, else UTF-8; undecodable bytes
    become U+FFFD rather than failing the node."""
    charset = "utf-8"
    for part in headers.get("content-type", "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def execute(call: NodeCall[HttpRequestConfig], inputs: dict[str, Any]) -> NodeOutput:
    from shared.workflows.fetch.ports import FetchError, FetchRequest, FetchTimeouts

    config = call.config
    url: str = inputs["url"]
    if not url.lower().startswith(("http://", "https://")):
        raise NodeFailure("http_request_invalid_url",
                          f"The URL must start with http:// or https:// once rendered, got {url[:200]!r}")
    headers = [(name, value) for name, value in inputs["headers"]]
    if config.authorization.type == "api-key":
        headers.append(_authorization(call))
    body, content_type = _body(config.body.type, inputs.get("body", ""))
    if content_type and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", content_type))
    budget = call.timeout_s
    timeouts = FetchTimeouts(connect_s=min(config.timeout.connect_s, budget), read_s=min(config.timeout.read_s, budget),
                             write_s=min(config.timeout.write_s, budget), total_s=budget)
    request = FetchRequest(method=config.method, url=url, headers=headers,
                           params=[(name, value) for name, value in inputs["params"]], body=body, timeouts=timeouts,
                           max_response_bytes=config.max_response_bytes, follow_redirects=config.follow_redirects)
    try:
        response = call.ports.fetcher.fetch(request)
    except FetchError as exc:
        raise NodeFailure(exc.code, exc.message) from exc
    node = call.node
    if not 200 <= response.status_code < 300 and (node.error_strategy != "fail" or node.retry.max_attempts > 1):
        raise NodeFailure("http_request_status_error",
                          f"The server answered HTTP {response.status_code}; the node's retry or error strategy "
                          f"applies to statuses outside 2xx", details={"status_code": response.status_code})
    return NodeOutput({"status_code": response.status_code, "body": decode(response.headers, response.body),
                       "headers": dict(response.headers)})


EXECUTOR = NodeExecutor(resolve, execute)
