"""The provider port: one adapter per wire protocol (openai, anthropic, bedrock, local)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from shared.models.types import ChatEvent, ChatRequest, ChatResult, Credentials, RerankResult, Timeouts

C = TypeVar("C")


class ChatProvider(Protocol):
    def chat(self, model: str, request: ChatRequest, credentials: Credentials, timeouts: Timeouts) -> ChatResult:
        """One completion. Raises shared.models.errors.ProviderError subclasses."""
        ...

    def stream(self, model: str, request: ChatRequest, credentials: Credentials,
               timeouts: Timeouts) -> Iterator[ChatEvent]:
        """Deltas, then exactly one StreamEnd. Asks the provider for usage when it can.
        Raises ProviderError subclasses, also mid-stream."""
        ...


class EmbeddingProvider(Protocol):
    def embed(self, model: str, texts: list[str], credentials: Credentials, timeouts: Timeouts,
              dimensions: int | None = None) -> tuple[list[list[float]], int]:
        """Vectors in input order, and the input tokens the provider counted (0 if unknown)."""
        ...


class RerankProvider(Protocol):
    def rerank(self, model: str, query: str, documents: list[str], credentials: Credentials,
               timeouts: Timeouts, top_n: int | None = None) -> list[RerankResult]:
        ...


def tenant_http_client(factory: Callable[..., C], credentials: Credentials) -> C | None:
    """For a tenant-supplied endpoint, the SDK's httpx2 client (``factory``: its
    ``DefaultHttpxClient``, which keeps the SDK's limits and redirect defaults) connecting
    through the egress policy; a refusal raises ``model_endpoint_forbidden``. None for a
    platform endpoint: the SDK builds its own client."""
    if credentials.egress is None:
        return None
    from shared.egress import guarded_client_kwargs
    from shared.models.errors import endpoint_forbidden

    return factory(**guarded_client_kwargs(credentials.egress, refused=endpoint_forbidden))
