"""Typed provider errors. Adapters map each SDK's exceptions to these (by exception type and
status code, never by message text); the HTTP layer maps them to the envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import StratusError

if TYPE_CHECKING:
    from shared.egress import EgressRefused


class ProviderError(StratusError):
    code, status, default_message = "model_provider_error", 502, "The model provider failed"
    # Whether a retry (same model) may succeed.
    retryable = False


class ProviderRateLimited(ProviderError):
    code, status, default_message = "model_rate_limited", 429, "The model provider is rate limiting requests"
    retryable = True

    def __init__(self, message: str | None = None, *, retry_after_s: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s
        if retry_after_s is not None:
            self.headers = {**self.headers, "Retry-After": str(max(1, round(retry_after_s)))}


class ProviderUnavailable(ProviderError):
    code, status, default_message = "model_unavailable", 503, "The model provider is unavailable"
    retryable = True


class ProviderTimeout(ProviderUnavailable):
    code, default_message = "model_timeout", "The model provider did not answer in time"


class ContextTooLong(ProviderError):
    code, status, default_message = "model_context_too_long", 400, "The input is longer than the model's context"

    def __init__(self, message: str | None = None, *, context_window: int | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        # The model's real context window in tokens, when the provider said it: the gateway
        # remembers it so the next prompt is sized to fit (shared.models.context_windows).
        self.context_window = context_window
        if context_window is not None:
            self.details = {**self.details, "context_window": context_window}


class InvalidModelRequest(ProviderError):
    code, status, default_message = "model_invalid_request", 400, "The model provider rejected the request"


class ProviderAuthFailed(ProviderError):
    code, status, default_message = ("model_auth_failed", 502,
                                     "The model provider rejected the credentials; check the model's API key")


class MalformedProviderResponse(ProviderError):
    code, status, default_message = "model_bad_response", 502, "The model provider sent a malformed response"
    retryable = True


class CircuitOpen(ProviderUnavailable):
    code, default_message = "model_circuit_open", "The model is failing; calls are paused briefly"


class ModelNotConfigured(StratusError):
    code, status, default_message = "model_not_configured", 400, "No model is configured for this call"


class ModelEndpointForbidden(ProviderError):
    """A tenant model's endpoint the egress policy refuses (shared/egress.py): not retried,
    no fallback, not counted by the circuit breaker (the same call would be refused again)."""

    code, status, default_message = ("model_endpoint_forbidden", 422,
                                     "The model endpoint is not an allowed destination")


def endpoint_forbidden(refusal: EgressRefused, *, field: str = "base_url") -> ModelEndpointForbidden:
    """The one mapping of an egress refusal to the models domain's error, on save (``field``
    is the request field, e.g. ``body.base_url``) and at call time (the model's ``base_url``)."""
    return ModelEndpointForbidden(
        f"The model's base_url is refused: {refusal.reason}",
        details={"rule": refusal.rule, "host": refusal.host,
                 "fields": [{"field": field, "type": f"egress_{refusal.rule}", "message": refusal.reason}]})


def endpoint_refusal(exc: BaseException) -> ModelEndpointForbidden | None:
    """The refusal behind ``exc``, however an SDK wrapped it (the anthropic SDK reports any
    exception of its transport as a connection error, which would be retried as
    ``model_unavailable``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ModelEndpointForbidden):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
