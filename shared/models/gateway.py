"""The model gateway: every agent, RAG answer and workflow LLM node calls models through it.

It resolves the model (tenant choice → tenant default → deployment default), its
credentials, checks the tenant's quota, calls the provider adapter under a retry policy and
a per provider+model circuit breaker (state shared through Redis), falls back to a
configured fallback model when the primary fails or its breaker is open, and records usage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shared.cache.ports import KeyValueStore
from shared.db.database import Database
from shared.egress import EgressPolicy, egress_policy
from shared.errors import StratusError
from shared.models.api import ModelTestResult
from shared.models.context_windows import ContextWindows
from shared.models.credentials import Cipher, platform_credentials, stored_api_key
from shared.models.errors import ContextTooLong, ModelNotConfigured, ProviderError, endpoint_refusal
from shared.models.resilience import CircuitBreaker, RetryPolicy, call_with_fallback, stream_with_fallback
from shared.models.resolver import ModelResolver, ResolvedModel
from shared.models.spec import Capability, ModelSpec, Protocol
from shared.models.types import (
    ChatEvent,
    ChatRequest,
    ChatResult,
    Credentials,
    Message,
    RerankResult,
    StreamEnd,
    TextDelta,
    Timeouts,
    ToolCallDelta,
    Usage,
)
from shared.models.usage import QuotaCheck, UsageService

T = TypeVar("T")
logger = logging.getLogger(__name__)

_ADAPTERS = {
    Protocol.OPENAI: ("shared.models.providers.openai_provider", "OpenAIProvider"),
    Protocol.ANTHROPIC: ("shared.models.providers.anthropic_provider", "AnthropicProvider"),
    Protocol.BEDROCK: ("shared.models.providers.bedrock_provider", "BedrockProvider"),
    Protocol.LOCAL: ("shared.models.local_embedding", "LocalEmbeddingProvider"),
}


# Decrypted tenant credentials kept per container (see ModelGateway._credentials).
CREDENTIALS_TTL_S = 300.0
CREDENTIALS_CACHE_SIZE = 256


class _RefusalsSurfaced:
    """An adapter whose calls raise ``model_endpoint_forbidden`` itself when the egress
    policy refused the connection, whatever provider error the SDK's wrapping turned it into:
    inside the retry policy and the breaker, so it is neither retried nor counted."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    def chat(self, *args: Any, **kwargs: Any) -> Any:
        with _surfaced():
            return self._adapter.chat(*args, **kwargs)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatEvent]:
        with _surfaced():
            yield from self._adapter.stream(*args, **kwargs)

    def embed(self, *args: Any, **kwargs: Any) -> Any:
        with _surfaced():
            return self._adapter.embed(*args, **kwargs)

    def rerank(self, *args: Any, **kwargs: Any) -> Any:
        with _surfaced():
            return self._adapter.rerank(*args, **kwargs)


@contextlib.contextmanager
def _surfaced() -> Iterator[None]:
    try:
        yield
    except ProviderError as exc:
        refusal = endpoint_refusal(exc)
        if refusal is None or refusal is exc:
            raise
        raise refusal from exc


class ProviderRegistry:
    """One adapter instance per protocol, imported on first use (a function pays only for
    the SDKs it calls)."""

    def __init__(self, overrides: dict[Protocol, Any] | None = None) -> None:
        self._instances: dict[Protocol, Any] = dict(overrides or {})
        self._lock = threading.Lock()

    def get(self, protocol: Protocol) -> Any:
        instance = self._instances.get(protocol)
        if instance is None:
            with self._lock:
                instance = self._instances.get(protocol)
                if instance is None:
                    module, name = _ADAPTERS[protocol]
                    instance = self._instances[protocol] = getattr(importlib.import_module(module), name)()
        return _RefusalsSurfaced(instance)


def estimate_tokens(texts: list[str]) -> int:
    """Local count where a provider reports none: the bundled model's tokenizer when it is
    installed, else about four characters a token. Such usage is marked estimated."""
    try:
        from shared.models.local_embedding import count_tokens

        return sum(count_tokens(texts))
    except ImportError:
        return sum(math.ceil(len(t) / 4) for t in texts)


@dataclass(frozen=True)
class Target:
    model: ResolvedModel
    credentials: Credentials

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec


@dataclass
class GatewayChat:
    result: ChatResult
    model: str
    # e.g. the soft-quota warning: the HTTP layer passes them on.
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class EmbedResult:
    vectors: list[list[float]]
    model: str
    dimensions: int
    usage: Usage


class EmbeddingInterrupted(StratusError):
    """A batch failed: ``completed_batches`` were embedded (and handed to ``on_batch``); the
    caller resumes with ``start_batch=completed_batches`` instead of starting over."""

    code, status, default_message = "model_embedding_interrupted", 502, "Embedding stopped at a failed batch"

    def __init__(self, completed_batches: int, cause: ProviderError) -> None:
        super().__init__(f"Embedding stopped after {completed_batches} batches: {cause.message}",
                         details={"completed_batches": completed_batches, "error": cause.code},
                         headers=cause.headers)
        self.completed_batches = completed_batches
        self.cause_error = cause


class ModelGateway:
    def __init__(self, db: Database, resolver: ModelResolver, usage: UsageService, kv: KeyValueStore,
                 cipher: Callable[[], Cipher], providers: ProviderRegistry | None = None,
                 retry: RetryPolicy | None = None, timeouts: dict[str, Timeouts] | None = None,
                 clock: Callable[[], float] = time.perf_counter, egress: EgressPolicy | None = None) -> None:
        self._db = db
        self._resolver = resolver
        self._usage = usage
        self._kv = kv
        self._cipher = cipher
        self._providers = providers or ProviderRegistry()
        self._retry = retry or RetryPolicy()
        # Per call type ("chat", "embedding", "rerank", "test"): a long generation and a quick
        # embedding batch deserve different read timeouts.
        self._timeouts = {kind: Timeouts() for kind in ("chat", "embedding", "rerank", "test")} | (timeouts or {})
        self._clock = clock
        # Tenant endpoints connect through it; None: the deployment's (STRATUS_EGRESS_ALLOW).
        self._egress = egress
        self._credentials_lock = threading.Lock()
        self._credentials_cache: dict[tuple[uuid.UUID, int], tuple[Credentials, float]] = {}

    # Resolution --------------------------------------------------------------------------
    def target(self, tenant_id: uuid.UUID, name: str | None, capability: Capability) -> Target:
        name = name or self._resolver.default_name(tenant_id, capability)
        if not name:
            raise ModelNotConfigured(f"No {capability.value} model is configured: set a tenant default "
                                     f"(PUT /api/v1/models/defaults) or the deployment's "
                                     f"DEFAULT_{capability.value.upper()}_MODEL",
                                     details={"capability": capability.value})
        model = self._resolver.get(tenant_id, name, capability)
        return Target(model, self._credentials(model))

    def _credentials(self, model: ResolvedModel) -> Credentials:
        spec = model.spec
        if model.source == "catalog":
            return platform_credentials(spec)
        # A decrypt is a KMS call (and a database read): once per model version and container
        # for a few minutes, not once per chat turn. A changed key is a new model version.
        key = (model.id, model.version)
        now = self._clock()
        with self._credentials_lock:
            cached = self._credentials_cache.get(key)
            if cached is not None and cached[1] > now:
                return cached[0]
        credentials = Credentials(api_key=stored_api_key(self._db, self._cipher, model),
                                  base_url=spec.connection.base_url, region=spec.connection.region,
                                  egress=self._egress_policy())
        with self._credentials_lock:
            if len(self._credentials_cache) >= CREDENTIALS_CACHE_SIZE:
                self._credentials_cache.clear()
            self._credentials_cache[key] = (credentials, now + CREDENTIALS_TTL_S)
        return credentials

    def _egress_policy(self) -> EgressPolicy:
        return self._egress or egress_policy()

    def _learn_context_window(self, target: Target, exc: ProviderError) -> None:
        """The provider said how large the model's context really is: the next prompt fits it."""
        if isinstance(exc, ContextTooLong) and exc.context_window is not None:
            try:
                ContextWindows(self._kv).learn(target.model, exc.context_window)
            except Exception:  # the cache is down: the call's own error matters more
                logger.warning("could not remember a model's context window", exc_info=True)

    def _breaker(self, spec: ModelSpec) -> CircuitBreaker:
        return CircuitBreaker(self._kv, f"{spec.protocol.value}:{spec.provider_model}")

    def _guarded(self, spec: ModelSpec, fn: Callable[[], T]) -> Callable[[], T]:
        breaker = self._breaker(spec)
        return lambda: self._retry.call(lambda: breaker.call(fn))

    @staticmethod
    def _with_defaults(spec: ModelSpec, request: ChatRequest) -> ChatRequest:
        defaults = {k: v for k, v in spec.default_parameters.items()
                    if k in ("temperature", "top_p", "max_tokens") and getattr(request, k) is None}
        if request.max_tokens is None and "max_tokens" not in defaults:
            defaults["max_tokens"] = spec.max_output_tokens
        return request.model_copy(update=defaults) if defaults else request

    # Chat ----------------------------------------------------------------------------------
    def chat(self, tenant_id: uuid.UUID, request: ChatRequest, model: str | None = None,
             fallback_model: str | None = None) -> GatewayChat:
        quota = self._usage.check_quota(tenant_id)
        primary = self.target(tenant_id, model, Capability.CHAT)
        fallback_name = fallback_model or self._resolver.fallback_name(tenant_id)

        def attempt(target: Target) -> Callable[[], GatewayChat]:
            def run() -> GatewayChat:
                provider = self._providers.get(target.spec.protocol)
                call_request = self._with_defaults(target.spec, request)
                started = self._clock()
                try:
                    # One provider call per attempt (the retry policy around it decides
                    # about more), each recorded.
                    result: ChatResult = self._breaker(target.spec).call(lambda: provider.chat(
                        target.spec.provider_model, call_request, target.credentials, self._timeouts["chat"]))
                except ProviderError as exc:
                    self._record(tenant_id, target.spec, "chat", Usage(), started, exc.code)
                    self._learn_context_window(target, exc)
                    raise
                if result.usage.total_tokens == 0:
                    # The provider reported no usage: count locally, marked estimated.
                    result = dataclasses.replace(result, usage=Usage(
                        input_tokens=estimate_tokens([m.content for m in call_request.messages]),
                        output_tokens=estimate_tokens([result.content]), estimated=True))
                self._record(tenant_id, target.spec, "chat", result.usage, started, "ok")
                return GatewayChat(result, target.model.name, quota.warning_header())
            return run

        fallback = None
        if fallback_name and fallback_name != primary.model.name:
            fallback = lambda: attempt(self.target(tenant_id, fallback_name, Capability.CHAT))()  # noqa: E731
        return call_with_fallback(attempt(primary), fallback, self._retry)

    def stream_chat(self, tenant_id: uuid.UUID, request: ChatRequest, model: str | None = None,
                    fallback_model: str | None = None) -> tuple[Iterator[ChatEvent], QuotaCheck, str]:
        """Deltas then one StreamEnd (usage estimated when the provider gave none). Retries,
        and the fallback model, happen only before the first delta: a partial generation is
        never replayed. Returns the events, the quota state and the primary model's name."""
        quota = self._usage.check_quota(tenant_id)
        primary = self.target(tenant_id, model, Capability.CHAT)
        fallback_name = fallback_model or self._resolver.fallback_name(tenant_id)
        fallback = None
        if fallback_name and fallback_name != primary.model.name:
            fallback = lambda: self._stream(  # noqa: E731
                tenant_id, self.target(tenant_id, fallback_name, Capability.CHAT), request)
        events = stream_with_fallback(lambda: self._stream(tenant_id, primary, request), fallback, self._retry)
        return events, quota, primary.model.name

    def _stream(self, tenant_id: uuid.UUID, target: Target, request: ChatRequest) -> Iterator[ChatEvent]:
        """One provider stream (one attempt), always accounted: completed, failed, or
        abandoned by its reader (the provider generated those tokens all the same)."""
        provider = self._providers.get(target.spec.protocol)
        call_request = self._with_defaults(target.spec, request)
        breaker = self._breaker(target.spec)
        started = self._clock()
        text: list[str] = []
        recorded = False

        def estimated_usage() -> Usage:
            return Usage(input_tokens=estimate_tokens([m.content for m in call_request.messages]),
                         output_tokens=estimate_tokens(["".join(text)]) if text else 0, estimated=True)

        try:
            for event in breaker.stream(lambda: provider.stream(
                    target.spec.provider_model, call_request, target.credentials, self._timeouts["chat"])):
                if isinstance(event, TextDelta):
                    text.append(event.text)
                elif isinstance(event, ToolCallDelta):
                    text.append(event.arguments)
                elif isinstance(event, StreamEnd):
                    usage = event.usage or estimated_usage()
                    recorded = True
                    self._record(tenant_id, target.spec, "chat", usage, started, "ok")
                    yield StreamEnd(event.stop_reason, usage, event.model)
                    return
                yield event
        except ProviderError as exc:
            recorded = True
            self._record(tenant_id, target.spec, "chat", Usage(
                output_tokens=estimate_tokens(["".join(text)]) if text else 0, estimated=bool(text)),
                started, exc.code)
            self._learn_context_window(target, exc)
            raise
        finally:
            if not recorded:
                self._record(tenant_id, target.spec, "chat", estimated_usage(), started, "interrupted")

    # Embeddings ------------------------------------------------------------------------------
    def embed(self, tenant_id: uuid.UUID, texts: list[str], model: str | None = None, *, start_batch: int = 0,
              on_batch: Callable[[int, list[list[float]]], None] | None = None) -> EmbedResult:
        """Embed in batches within the model's limits. ``on_batch(index, vectors)`` sees each
        batch as it completes; a failure raises EmbeddingInterrupted naming the batch to
        resume from, so a long document never starts over."""
        self._usage.check_quota(tenant_id)
        target = self.target(tenant_id, model, Capability.EMBEDDING)
        spec = target.spec
        provider = self._providers.get(spec.protocol)
        size = spec.max_batch_size
        batches = [texts[i:i + size] for i in range(0, len(texts), size)]
        vectors: list[list[float]] = []
        input_tokens = 0
        estimated = False
        for index in range(start_batch, len(batches)):
            batch = batches[index]
            started = self._clock()
            try:
                batch_vectors, tokens = self._guarded(spec, lambda b=batch: provider.embed(  # type: ignore[misc]
                    spec.provider_model, b, target.credentials, self._timeouts["embedding"]))()
            except ProviderError as exc:
                self._record(tenant_id, spec, "embedding", Usage(), started, exc.code)
                raise EmbeddingInterrupted(index, exc) from exc
            if len(batch_vectors) != len(batch) or any(len(v) != spec.dimensions for v in batch_vectors):
                from shared.models.errors import MalformedProviderResponse

                error = MalformedProviderResponse(
                    f"{spec.name} returned vectors that do not match its declared {spec.dimensions} dimensions",
                    code="model_dimension_mismatch", details={"model": spec.name, "expected": spec.dimensions})
                self._record(tenant_id, spec, "embedding", Usage(), started, error.code)
                raise EmbeddingInterrupted(index, error)
            batch_estimated = tokens == 0
            tokens = tokens or estimate_tokens(batch)
            estimated = estimated or batch_estimated
            input_tokens += tokens
            self._record(tenant_id, spec, "embedding", Usage(input_tokens=tokens, estimated=batch_estimated),
                         started, "ok")
            if on_batch is not None:
                on_batch(index, batch_vectors)
            vectors.extend(batch_vectors)
        return EmbedResult(vectors, target.model.name, spec.dimensions or 0,
                           Usage(input_tokens=input_tokens, estimated=estimated))

    # Rerank ------------------------------------------------------------------------------------
    def rerank(self, tenant_id: uuid.UUID, query: str, documents: list[str], model: str | None = None,
               top_n: int | None = None) -> tuple[str, list[RerankResult]]:
        """Relevance of each document to the query, best first, by a rerank model (the named
        one, else the tenant's default). Returns the model used and the results."""
        self._usage.check_quota(tenant_id)
        target = self.target(tenant_id, model, Capability.RERANK)
        spec = target.spec
        provider = self._providers.get(spec.protocol)
        started = self._clock()
        try:
            results: list[RerankResult] = self._retry.call(self._guarded(spec, lambda: provider.rerank(
                spec.provider_model, query, documents, target.credentials, self._timeouts["rerank"], top_n)))
        except ProviderError as exc:
            self._record(tenant_id, spec, "rerank", Usage(), started, exc.code)
            raise
        self._record(tenant_id, spec, "rerank", Usage(input_tokens=estimate_tokens([query, *documents]),
                                                       estimated=True), started, "ok")
        return target.model.name, sorted(results, key=lambda r: r.score, reverse=True)

    # Credential test ---------------------------------------------------------------------------
    def test_spec(self, tenant_id: uuid.UUID, spec: ModelSpec, api_key: str | None, *,
                  trusted: bool = False) -> ModelTestResult:
        """A minimal real call with these settings (no retries: the answer should be quick).
        It spends tokens like any call, so it is recorded like any call. ``trusted``: a catalog
        model's endpoint (otherwise the tenant's, through the egress policy)."""
        started = self._clock()
        usage = Usage()
        call_type = "chat"
        try:
            credentials = platform_credentials(spec) if api_key is None and spec.connection.api_key_ref else \
                Credentials(api_key=api_key, base_url=spec.connection.base_url, region=spec.connection.region)
            if not trusted:
                credentials = dataclasses.replace(credentials, egress=self._egress_policy())
            provider = self._providers.get(spec.protocol)
            if spec.has(Capability.CHAT):
                result = provider.chat(spec.provider_model, ChatRequest(
                    messages=[Message(role="user", content="ping")], max_tokens=1), credentials, self._timeouts["test"])
                usage = result.usage
            elif spec.has(Capability.EMBEDDING):
                call_type = "embedding"
                _, tokens = provider.embed(spec.provider_model, ["ping"], credentials, self._timeouts["test"])
                usage = Usage(input_tokens=tokens)
            elif spec.has(Capability.RERANK):
                call_type = "rerank"
                provider.rerank(spec.provider_model, "ping", ["ping"], credentials, self._timeouts["test"])
        except StratusError as exc:
            if isinstance(exc, ProviderError):
                self._record(tenant_id, spec, call_type, usage, started, exc.code)
            return ModelTestResult(model=spec.name, ok=False, latency_ms=self._ms(started),
                                   error={"code": exc.code, "message": exc.message})
        self._record(tenant_id, spec, call_type, usage, started, "ok")
        return ModelTestResult(model=spec.name, ok=True, latency_ms=self._ms(started))

    def _ms(self, started: float) -> int:
        return int((self._clock() - started) * 1000)

    def _record(self, tenant_id: uuid.UUID, spec: ModelSpec, call_type: str, usage: Usage, started: float,
                outcome: str) -> None:
        self._usage.record(tenant_id=tenant_id, model_name=spec.name, call_type=call_type,
                           input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                           estimated=usage.estimated, latency_ms=self._ms(started),
                           cost=spec.cost(usage.input_tokens, usage.output_tokens), outcome=outcome)
