from __future__ import annotations

import uuid

import pytest

from shared.auth.principal import Principal
from shared.auth.token_state import TokenStateStore
from shared.cache.memory import MemoryKeyValueStore
from shared.errors import Unauthenticated


def test_revocation_and_role_changes_outlive_the_authorizer_cache() -> None:
    kv = MemoryKeyValueStore()
    store = TokenStateStore(kv, cache_ttl_s=300)
    p = Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=uuid.uuid4(), user_id=uuid.uuid4(), role="viewer")
    assert store.apply(p) == p
    store.set_role([p.token_id], "admin")
    assert store.apply(p).role == "admin"
    key = f"auth:tok:{{{p.token_id}}}"
    ttl = kv.ttl(key)
    assert ttl is not None and 300 < ttl <= 360
    store.revoke([p.token_id])
    with pytest.raises(Unauthenticated) as err:
        store.apply(p)
    assert err.value.code == "auth_token_revoked"
