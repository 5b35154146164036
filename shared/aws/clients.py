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


def client(service: str, *, read_timeout_s: int = 30) -> Any:
    """``read_timeout_s``: longer for a call that waits on work (a synchronous Lambda invoke
    waits for the function to finish)."""
    with _lock:
        return _client(service, read_timeout_s)


@cache
def _client(service: str, read_timeout_s: int) -> Any:
    from botocore.config import Config

    # Explicit timeouts and bounded retries on every AWS call (docs/architecture.md §7.2).
    config = Config(connect_timeout=5, read_timeout=read_timeout_s,
                    retries={"max_attempts": 4, "mode": "standard"})
    return _session().client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients (the local runtime points boto3 at moto after import)."""
    with _lock:
        _client.cache_clear()
        _session.cache_clear()
