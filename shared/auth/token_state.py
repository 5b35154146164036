"""Token revocations and role changes that must beat the authorizer's cache.

API Gateway may answer from a cached authorizer result for ``authorizer_cache_ttl_s``;
the shared middleware therefore reads one Redis key per token id on every request. Each
entry lives a little longer than the cache, after which the authorizer re-reads the
database anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from shared.auth.principal import Principal
from shared.cache.ports import KeyValueStore
from shared.errors import Unauthenticated

_REVOKED = "revoked"
_ROLE = "role:"
# Margin over the authorizer cache TTL, for clock skew and in-flight requests.
_MARGIN_S = 60


def _key(token_id: uuid.UUID) -> str:
    return f"auth:tok:{{{token_id}}}"


class TokenStateStore:
    def __init__(self, kv: KeyValueStore, cache_ttl_s: int) -> None:
        self._kv = kv
        self._ttl_s = cache_ttl_s + _MARGIN_S

    def revoke(self, token_ids: Iterable[uuid.UUID]) -> None:
        for token_id in token_ids:
            self._kv.set(_key(token_id), _REVOKED, ttl_s=self._ttl_s)

    def set_role(self, token_ids: Iterable[uuid.UUID], role: str) -> None:
        for token_id in token_ids:
            self._kv.set(_key(token_id), _ROLE + role, ttl_s=self._ttl_s)

    def apply(self, principal: Principal) -> Principal:
        """The principal as it stands now: raises if its token was revoked, carries the
        member's current role if it changed since the authorizer ran."""
        state = self._kv.get(_key(principal.token_id))
        if state is None:
            return principal
        if state == _REVOKED:
            raise Unauthenticated("Token has been revoked", code="auth_token_revoked")
        if state.startswith(_ROLE):
            return principal.with_role(state.removeprefix(_ROLE))
        return principal


def get_token_state() -> TokenStateStore:
    from shared.cache.factory import get_kv_store
    from shared.config import get_settings

    return TokenStateStore(get_kv_store(), get_settings().authorizer_cache_ttl_s)
