"""Secrets through the AWS Parameters and Secrets Lambda Extension (a local HTTP endpoint),
so reading a secret does not import boto3."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
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


def get_previous_secret_string(secret_id: str) -> str | None:
    """The secret's AWSPREVIOUS version (the value before the last put-secret-value), or None
    when it has none (never changed, or the label was removed) or it cannot be read now. For a
    value accepted during a rotation: the old one stays valid until it is retired."""
    try:
        return _previous.get(secret_id) or None
    except Unavailable:
        return None


def clear_secret_cache() -> None:
    _secrets.clear()
    _previous.clear()


def _fetch(secret_id: str, version_stage: str | None = None) -> str:
    settings = get_settings()
    token = settings.aws_session_token.get_secret_value() if settings.aws_session_token else ""
    query = {"secretId": secret_id, **({"versionStage": version_stage} if version_stage else {})}
    url = (f"http://localhost:{settings.parameters_secrets_extension_http_port}"
           f"/secretsmanager/get?{urllib.parse.urlencode(query, safe='')}")
    request = urllib.request.Request(url, headers={"X-Aws-Parameters-Secrets-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback only)
            return str(json.loads(response.read())["SecretString"])
    except OSError as exc:
        raise Unavailable("Secrets are unavailable", code="sys_secret_unavailable") from exc


def _fetch_previous(secret_id: str) -> str:
    try:
        return _fetch(secret_id, "AWSPREVIOUS")
    except Unavailable as exc:
        # The extension passes on Secrets Manager's 4xx (no version has the label): no previous
        # value, kept like a value. Anything else is raised and retried on the next call.
        if isinstance(exc.__cause__, urllib.error.HTTPError) and 400 <= exc.__cause__.code < 500:
            return ""
        raise


_secrets = SecretCache(_fetch)
_previous = SecretCache(_fetch_previous)
