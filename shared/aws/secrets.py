"""Secrets through the AWS Parameters and Secrets Lambda Extension (a local HTTP endpoint),
so reading a secret does not import boto3."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from functools import cache
from typing import Any

from shared.config import get_settings
from shared.errors import Unavailable


def get_secret_json(secret_id: str) -> dict[str, Any]:
    return dict(json.loads(get_secret_string(secret_id)))


@cache
def get_secret_string(secret_id: str) -> str:
    """A secret's raw string (for API keys stored as plain text)."""
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
