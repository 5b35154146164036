"""The container's cache adapters: Redis (cluster mode) when REDIS_URL is set, otherwise
in-process adapters (the local runtime's embedded default)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from shared.cache.ports import EventStream, KeyValueStore, RateLimiter

_lock = threading.Lock()
_instances: dict[str, Any] = {}


def _redis_client() -> Any:
    from shared.cache.redis_adapter import connect
    from shared.config import get_settings

    settings = get_settings()
    assert settings.redis_url is not None
    password: Callable[[], str] | None = None
    if settings.redis_secret_arn:
        from shared.aws.secrets import get_secret_string

        # Read for every new connection, through the container's secret cache: a changed
        # password reaches the next connection without a cold start.
        password = partial(get_secret_string, settings.redis_secret_arn)
    return connect(settings.redis_url.get_secret_value(), cluster=settings.redis_cluster,
                   username=settings.redis_user, password=password)


def _build(kind: str) -> Any:
    from shared.config import get_settings

    if get_settings().redis_url is not None:
        from shared.cache import redis_adapter

        client = _instances.get("client") or _redis_client()
        _instances["client"] = client
        return {"kv": redis_adapter.RedisKeyValueStore,
                "limiter": redis_adapter.RedisRateLimiter,
                "stream": redis_adapter.RedisEventStream}[kind](client)
    from shared.cache import memory

    return {"kv": memory.MemoryKeyValueStore,
            "limiter": memory.MemoryRateLimiter,
            "stream": memory.MemoryEventStream}[kind]()


def _get(kind: str) -> Any:
    instance = _instances.get(kind)
    if instance is None:
        with _lock:
            instance = _instances.get(kind)
            if instance is None:
                instance = _instances[kind] = _build(kind)
    return instance


def get_kv_store() -> KeyValueStore:
    return _get("kv")


def get_rate_limiter() -> RateLimiter:
    return _get("limiter")


def get_event_stream() -> EventStream:
    return _get("stream")


def reset_cache_adapters() -> None:
    """Drop the cached adapters (tests and the local runtime switch configurations)."""
    with _lock:
        client = _instances.pop("client", None)
        _instances.clear()
    if client is not None:
        client.close()
