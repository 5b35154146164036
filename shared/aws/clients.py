"""boto3 clients, created lazily and cached per container (boto3 is imported only by the
functions that use it)."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

_lock = threading.Lock()


@cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


def client(service: str) -> Any:
    with _lock:
        return _client(service)


@cache
def _client(service: str) -> Any:
    from botocore.config import Config

    # Explicit timeouts and bounded retries on every AWS call (docs/architecture.md §7.2).
    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 4, "mode": "standard"})
    return _session().client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients (the local runtime points boto3 at moto after import)."""
    with _lock:
        _client.cache_clear()
        _session.cache_clear()
