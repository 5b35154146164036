"""The HTTP side of every API function: a Powertools resolver bound to the function's
catalog route, the shared auth middleware, the one mapping from domain errors to the
route's dialect (Stratus's envelope by default), and the fixed decorator stack.

A function module reads::

    app = http_app(function_for_module(__name__))

    @app.endpoint
    def create_api_key(body: CreateApiKey) -> Response[Envelope[ApiKeyCreated]]:
        return app.created(tenancy().create_api_key(current_principal(), body))

    handler = app.lambda_handler()
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths

from shared.catalog import Function, Http
from shared.db.paging import Page
from shared.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    StratusError,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.handler import Handler, powertools_handler
from shared.http.context import (
    add_response_headers,
    current_request_id,
    request_id_of,
    response_headers,
    set_request,
)
from shared.http.dialect import Dialect, dialect_for
from shared.http.envelope import JSON
from shared.observability import logger
from shared.validation import check_json_payload

F = TypeVar("F", bound=Callable[..., Any])

_PATH_PARAM = re.compile(r"\{(\w+)\}")


def powertools_rule(path: str) -> str:
    """``/api/v1/members/{member_id}`` → ``/api/v1/members/<member_id>``."""
    return _PATH_PARAM.sub(r"<\1>", path)


def body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return (len(body) * 3) // 4
    return len(body.encode())


def payload_too_large(route: Http, max_bytes: int) -> PayloadTooLarge:
    """The 413 of a route, with what to do instead where the route says (a document's upload)."""
    message = f"Request body over {max_bytes} bytes: {route.too_large_hint}" if route.too_large_hint else None
    return PayloadTooLarge(message, details={"max_bytes": max_bytes})


def check_json_body(event: dict[str, Any]) -> None:
    """What Powertools would decode and validate, checked first: a body must be declared JSON
    (else 415 saying which content type to send, not a 422 naming the form-decoded body as a
    field), and must not nest deeper than the decoder and validators can recurse."""
    body = event.get("body")
    if not body:
        return
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type")
    if event.get("isBase64Encoded"):
        import base64
        import binascii

        try:
            raw: str | bytes = base64.b64decode(body)
        except (binascii.Error, ValueError):
            # Powertools refuses it as malformed; the content type is still checked first.
            raw = b""
    else:
        raw = body
    check_json_payload(raw, content_type)


def check_multipart_body(event: dict[str, Any]) -> None:
    """A file upload's body must be multipart/form-data with its boundary (else 415 saying so)."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type") or ""
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data" or "boundary=" not in content_type:
        raise UnsupportedMediaType("Send the file as multipart/form-data, in a part named \"file\"",
                                   details={"expected_content_type": "multipart/form-data",
                                            "content_type": content_type or None})


def _validation_error(exc: RequestValidationError) -> StratusError:
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        return BadRequest("Request body is not valid JSON", code="biz_malformed_json")
    return ValidationFailed.of(errors)


class StratusApp:
    def __init__(self, function: Function) -> None:
        self.function = function
        trigger = function.trigger
        if not isinstance(trigger, Http):
            raise TypeError(f"{function.module} is not an HTTP function in the catalog")
        self.route = trigger
        # Every answer, success or error, takes the route's shape.
        self.dialect: Dialect = dialect_for(trigger.dialect)
        # A response that breaks its documented model is our bug: 500, not a 422.
        self.resolver = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
        self._register_error_handlers()

    # -- registration ---------------------------------------------------------------
    def endpoint(self, fn: F) -> F:
        """Register ``fn`` at this function's catalog route."""
        return self._register(fn)

    def file_endpoint(self, media_type: str, description: str, schema: dict[str, Any]) -> Callable[[F], F]:
        """Register ``fn`` at this route answering a file of ``media_type`` (e.g. a YAML export;
        the handler answers with :meth:`file`) instead of the envelope; errors still answer in
        the dialect. ``schema`` describes the file's content as its media type parses (a YAML
        mapping: an object) for the OpenAPI document."""
        responses = {200: {"description": description, "content": {media_type: {"schema": schema}}}}
        return lambda fn: self._register(fn, responses)

    def _register(self, fn: F, responses: dict[int, Any] | None = None) -> F:
        return self.resolver.route(
            powertools_rule(self.route.path), self.route.method,
            summary=self.route.summary or None, tags=[self.route.tag] if self.route.tag else None,
            operation_id=self.function.name, responses=responses,
        )(fn)

    def _register_error_handlers(self) -> None:
        r = self.resolver

        @r.exception_handler(StratusError)
        def _domain(exc: StratusError) -> Response[Any]:
            return self._error(exc)

        @r.exception_handler(RequestValidationError)
        def _invalid(exc: RequestValidationError) -> Response[Any]:
            return self._error(_validation_error(exc))

        @r.exception_handler(RequestUnsupportedContentType)
        def _media_type(exc: RequestUnsupportedContentType) -> Response[Any]:
            return self._error(UnsupportedMediaType())

        @r.exception_handler(UnicodeDecodeError)
        def _not_utf8(exc: UnicodeDecodeError) -> Response[Any]:
            return self._error(BadRequest("Request body is not valid UTF-8 JSON", code="biz_malformed_json"))

        @r.not_found
        def _not_found(_: NotFoundError) -> Response[Any]:
            return self._error(NotFound("Route not found", code="biz_route_not_found"))

        @r.exception_handler(Exception)
        def _unexpected(exc: Exception) -> Response[Any]:
            # Logged with the stack; the client sees no internals.
            logger.exception("unhandled error")
            return self._error(StratusError())

    # -- responses -------------------------------------------------------------------
    def _error(self, exc: StratusError) -> Response[Any]:
        request_id = current_request_id()
        answer = self.dialect.error(exc, request_id)
        return Response(answer.status, JSON, answer.body,
                        headers={"X-Request-Id": request_id, **response_headers(), **answer.headers})

    def ok(self, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
        # The body stays a dict: Powertools validates it against the endpoint's declared
        # envelope model before serialising, so a handler cannot answer what the
        # OpenAPI document does not promise.
        request_id = current_request_id()
        return Response(status, JSON, self.dialect.success(data, request_id),
                        headers={"X-Request-Id": request_id, **self.dialect.answer_headers(request_id),
                                 **response_headers(), **(headers or {})})

    def created(self, data: Any) -> Response[Any]:
        return self.ok(data, status=201)

    def page(self, page: Page[Any]) -> Response[Any]:
        """A list answer: the page's items, and the envelope's ``pagination`` built from it."""
        request_id = current_request_id()
        return Response(200, JSON, self.dialect.page(page, request_id),
                        headers={"X-Request-Id": request_id, **self.dialect.answer_headers(request_id),
                                 **response_headers()})

    def file(self, body: str, media_type: str, *, filename: str | None = None) -> Response[Any]:
        """A :meth:`file_endpoint`'s answer: ``body`` as it is, not the envelope; ``filename``:
        offered as a download of that name."""
        headers = {"Content-Disposition": attachment(filename)} if filename else {}
        return Response(200, media_type, body,
                        headers={"X-Request-Id": current_request_id(), **response_headers(), **headers})

    def no_content(self) -> Response[Any]:
        # No content type and no body: Powertools would serialise an empty JSON body as
        # ``null``, and a 204 with a body breaks HTTP (h11 refuses it).
        request_id = current_request_id()
        return Response(204, None, None, headers={"X-Request-Id": request_id, **self.dialect.answer_headers(request_id),
                                                  **response_headers()})

    # -- invocation ------------------------------------------------------------------
    def dispatch(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        from shared.auth.origin import require_edge
        from shared.cache.factory import get_kv_store
        from shared.config import get_settings
        from shared.http.idempotency import NO_CLAIM, claim, takes_idempotency_key

        request_id = request_id_of(event)
        set_request(None, request_id)
        try:
            # Before any work: only CloudFront's requests (docs/adr/0047); public routes included.
            require_edge(event.get("headers"))
            max_body = self.route.max_body_bytes or get_settings().max_body_bytes
            if body_size(event) > max_body:
                raise payload_too_large(self.route, max_body)
            principal = None
            if self.route.auth:
                from shared.auth.guard import guard
                from shared.auth.token_state import get_token_state

                principal = guard(event, self.route.permission, get_token_state())
                set_request(principal, request_id)
                add_response_headers(enforce_rate_limit(principal))
            if self.route.body == "multipart":
                check_multipart_body(event)
            else:
                check_json_body(event)
            # A slow POST retried with its Idempotency-Key gets the first answer (docs/adr/0047).
            held = (claim(event, principal.tenant_id or principal.token_id, self.route.route_key, get_kv_store)
                    if principal is not None and takes_idempotency_key(self.function) else NO_CLAIM)
        except StratusError as exc:
            result = self.dialect.error_result(exc, request_id)
            result["headers"] = {**response_headers(), **result["headers"]}
            return result
        except Exception:
            # E.g. the cache unreachable during the auth check: logged with its stack, and the
            # client gets the dialect's 500 rather than API Gateway's bare one.
            logger.exception("request failed before reaching its handler")
            return self.dialect.error_result(StratusError(), request_id)
        if held.replay is not None:
            return held.replay
        try:
            answer: dict[str, Any] = self.resolver.resolve(event, context)
        except BaseException:
            held.abandon()
            raise
        held.finish(answer)
        return answer

    def lambda_handler(self) -> Handler:
        """The function's entry point, with the one fixed decorator stack."""

        return powertools_handler(self.dispatch, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._ -]+")
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")


def attachment(filename: str) -> str:
    """``Content-Disposition`` for a download (RFC 6266): an ASCII ``filename`` every client
    reads, and the exact name as ``filename*`` (UTF-8) for those that read it. Path separators
    and control or format characters never reach either."""
    import unicodedata
    from urllib.parse import quote

    exact = "".join("_" if ch in "/\\" or unicodedata.category(ch).startswith("C") else ch for ch in filename)
    stem, dot, extension = exact.rpartition(".")
    if not (dot and stem and _EXTENSION.fullmatch(extension)):
        stem, extension = exact, ""
    plain = (_UNSAFE_FILENAME.sub("_", stem).strip(" ._")[:80] or "download") + (f".{extension}" if extension else "")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(exact, safe='')}"


def enforce_rate_limit(principal: Any) -> dict[str, str]:
    """Per-token token bucket (Redis, shared by all containers); answers the RateLimit-*
    headers, or raises 429 with Retry-After."""
    import math

    from shared.cache.factory import get_rate_limiter
    from shared.config import get_settings
    from shared.errors import RateLimited

    settings = get_settings()
    decision = get_rate_limiter().acquire(f"tok:{principal.token_id}", capacity=settings.rate_limit_burst,
                                          refill_per_s=settings.rate_limit_per_s)
    headers = {"RateLimit-Limit": str(decision.limit), "RateLimit-Remaining": str(decision.remaining),
               "RateLimit-Reset": str(math.ceil(decision.reset_s))}
    if not decision.allowed:
        raise RateLimited("Too many requests for this token", code="sys_rate_limited",
                          headers={**headers, "Retry-After": str(max(1, math.ceil(decision.retry_after_s)))})
    return headers


def http_app(function: Function) -> StratusApp:
    """The app of an HTTP API function, bound to its catalog entry (``function_for_module(__name__)``)."""
    return StratusApp(function)
