"""Secrets through the AWS Parameters and Secrets Lambda Extension (a local HTTP endpoint),
so reading a secret does not import boto3."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from shared.config import get_settings
from shared.errors import Unavailable


def get_secret_json(secret_id: str) -> dict[str, Any]:
    return dict(json.loads(get_secret_string(secret_id)))


class SecretCache:
    """Secret values kept for ``ttl_s``, like the extension's own cache: a changed secret (new
    provider keys, a rotated password) reaches warm containers within that time."""

    def __init__(self, fetch: Callable[[str], str], ttl_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._values: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, secret_id: str) -> str:
        now = self._clock()
        with self._lock:
            cached = self._values.get(secret_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        value = self._fetch(secret_id)
        with self._lock:
            self._values[secret_id] = (now + self._ttl_s, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


def get_secret_string(secret_id: str) -> str:
    """A secret's raw string (for API keys stored as plain text)."""
    return _secrets.get(secret_id)


def clear_secret_cache() -> None:
    _secrets.clear()


def _fetch(secret_id: str) -> str:
    settings = get_settings()
    token = settings.aws_session_token.get_secret_value() if settings.aws_session_token else ""
    url = (f"http://localhost:{settings.parameters_secrets_extension_http_port}"
           f"/secretsmanager/get?secretId={urllib.parse.quote(secret_id, safe='')}")
    request = urllib.request.Request(url, headers={"X-Aws-Parameters-Secrets-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback only)
            return str(json.loads(response.read())["SecretString"])
    except OSError as exc:
        raise Unavailable("Secrets are unavailable", code="sys_secret_unavailable") from exc


_secrets = SecretCache(_fetch)
