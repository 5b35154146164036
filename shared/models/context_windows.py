"""Context windows learned from providers. A model's declared ``max_context_tokens`` may be
larger than what its server really accepts (an OpenAI-compatible server started with a
smaller ``max_model_len``, a catalog entry out of date). When a call fails with
``ContextTooLong`` and the provider named the real window, it is kept here, in the shared
cache, per model (and per tenant model version: a changed base URL may be another server),
and prompt budgets use the smaller of the two from then on."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.cache.ports import KeyValueStore
    from shared.models.resolver import ResolvedModel

logger = logging.getLogger(__name__)

# A server's configuration changes rarely; a month bounds how long a stale value lives.
LEARNED_TTL_S = 30 * 24 * 3600
# Below this, the number read from an error is not a context window (a parse gone wrong).
MIN_WINDOW = 256


def window_key(model: ResolvedModel) -> str:
    if model.source == "catalog":
        return f"model:ctx:catalog:{model.spec.protocol.value}:{model.spec.provider_model}"
    return f"model:ctx:{model.id}:{model.version}"


class ContextWindows:
    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv

    def learn(self, model: ResolvedModel, window: int) -> None:
        if window < MIN_WINDOW or window >= model.spec.max_context_tokens:
            return  # nothing to learn: the declared window is already no larger
        logger.info("learned a model's context window", extra={
            "model": model.name, "declared": model.spec.max_context_tokens, "learned": window})
        self._kv.set(window_key(model), str(window), ttl_s=LEARNED_TTL_S)

    def learned(self, model: ResolvedModel) -> int | None:
        value = self._kv.get(window_key(model))
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def effective(self, model: ResolvedModel) -> int:
        """The window a prompt must fit: the declared one, or the smaller one the provider told."""
        learned = self.learned(model)
        declared = model.spec.max_context_tokens
        return min(declared, learned) if learned is not None else declared
