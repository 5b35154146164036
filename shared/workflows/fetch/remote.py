"""The fetch function, called from a function that must not fetch itself (in AWS the workflow
functions run where a tenant URL could reach what it must not; the fetch function runs
outside the VPC with a role that only logs).

One synchronous invocation per request (RequestResponse). Its answer is the wire answer of
shared.workflows.fetch.ports; a failure of the invocation itself (the function timed out, ran
out of memory or crashed, Lambda refused the call) is a fetch error too, worded as the
platform's, not the tenant server's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared.workflows.fetch.ports import (
    FetchError,
    FetchFailed,
    FetchRequest,
    FetchResponse,
    FetchTimeout,
    FetchTooLarge,
    HttpFetcher,
    from_answer,
    to_answer,
)

# Lambda's synchronous payload limit is 6 MB each way. A body travels in base64 (4/3 of its
# size) beside the headers (httpcore caps a response's at 100 KiB), so this much body fits.
LAMBDA_MAX_BODY_BYTES = 4_000_000
LAMBDA_MAX_PAYLOAD_BYTES = 6_000_000

LambdaClientFactory = Callable[[], Any]


def lambda_limited(request: FetchRequest) -> FetchRequest:
    """``request`` with its response limit lowered to what a Lambda answer can carry."""
    if request.max_response_bytes <= LAMBDA_MAX_BODY_BYTES:
        return request
    import dataclasses

    return dataclasses.replace(request, max_response_bytes=LAMBDA_MAX_BODY_BYTES)


def lambda_too_large(limit: int) -> FetchTooLarge:
    return FetchTooLarge(f"the response body is over {limit} bytes, the most a response can carry back from the "
                         "fetch function (Lambda's 6 MB payload limit, whatever the node's max_response_bytes): "
                         "ask the server for less (a filter, a page, a range)")


def fetched_answer(fetcher: HttpFetcher, request: FetchRequest) -> dict[str, Any]:
    """The fetch function's side: ``request`` made within what a Lambda answer can carry, as
    its wire answer (the response, or the fetch error that stopped it)."""
    limited = lambda_limited(request)
    try:
        try:
            response = fetcher.fetch(limited)
        except FetchTooLarge:
            if limited is request:
                raise
            raise lambda_too_large(LAMBDA_MAX_BODY_BYTES) from None
        answer = to_answer(response)
        # Headers in JSON escapes can still tip an answer over.
        if len(json.dumps(answer)) > LAMBDA_MAX_PAYLOAD_BYTES:
            raise lambda_too_large(LAMBDA_MAX_BODY_BYTES)
        return answer
    except FetchError as exc:
        return to_answer(exc)


class LambdaFetcher:
    """An :class:`~shared.workflows.fetch.ports.HttpFetcher` that runs each request in the fetch
    function. ``client_factory`` makes a boto3 Lambda client (called on the first fetch)."""

    def __init__(self, client_factory: LambdaClientFactory, function_name: str) -> None:
        self._client_factory = client_factory
        self.function_name = function_name

    def fetch(self, request: FetchRequest) -> FetchResponse:
        # The node's own limit: the function lowers it to what its answer can carry, and says so.
        payload = json.dumps(request.to_json(), separators=(",", ":")).encode("utf-8")
        if len(payload) > LAMBDA_MAX_PAYLOAD_BYTES:
            raise FetchFailed(f"the request is {len(payload)} bytes once encoded, over the "
                              f"{LAMBDA_MAX_PAYLOAD_BYTES} bytes a request to the fetch function may be "
                              "(Lambda's 6 MB payload limit): send a smaller body")
        answer = self._invoke(payload)
        try:
            return from_answer(answer)
        except ValueError as exc:
            raise FetchFailed(f"the fetch function answered something that is not a fetch answer ({exc}): "
                              "a platform fault; report it to the operator") from None

    def _invoke(self, payload: bytes) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result = self._client_factory().invoke(FunctionName=self.function_name,
                                                   InvocationType="RequestResponse", Payload=payload)
            raw = result["Payload"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise FetchFailed(f"the fetch function could not be invoked: {error.get('Code', 'error')}: "
                              f"{error.get('Message', exc)} (a platform fault; retry, or report it to the "
                              "operator)") from None
        except BotoCoreError as exc:
            raise FetchFailed(f"the fetch function could not be reached: {exc} (retry, or report it to the "
                              "operator)") from None
        if result.get("FunctionError"):
            raise _function_error(raw)
        try:
            return json.loads(raw)
        except ValueError:
            raise FetchFailed("the fetch function answered something that is not JSON: a platform fault; "
                              "report it to the operator") from None


def _function_error(raw: bytes) -> FetchError:
    """The fetch error for an invocation that ended in a Lambda error: the function's own
    timeout, its answer over the payload limit, or a crash."""
    try:
        detail = json.loads(raw)
    except ValueError:
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    error_type = str(detail.get("errorType", ""))
    message = str(detail.get("errorMessage", "")) or "no detail"
    if error_type == "Sandbox.Timedout" or "Task timed out" in message:
        return FetchTimeout("the fetch function ran out of time before the server finished answering: set "
                            "lower timeouts on the node, or ask the server for less")
    if error_type == "Function.ResponseSizeTooLarge":
        return lambda_too_large(LAMBDA_MAX_BODY_BYTES)
    return FetchFailed(f"the fetch function failed: {error_type or 'error'}: {message} (a platform fault; retry, "
                       "or report it to the operator)")
