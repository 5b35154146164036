"""Access token secrets: generated here, only their hash is ever stored."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

PREFIX = "pat_"
_SECRET_BYTES = 32


def generate_token() -> str:
    return PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def hash_token(token: str) -> bytes:
    # The secret carries 256 bits of entropy, so a fast hash is safe and keeps the
    # authorizer's lookup cheap (no per-request key stretching).
    return hashlib.sha256(token.encode()).digest()


def display_prefix(token: str) -> str:
    """The first characters of a token, shown in listings so users can tell keys apart."""
    return token[: len(PREFIX) + 6]


def looks_like_token(value: str) -> bool:
    return value.startswith(PREFIX) and 16 <= len(value) <= 256


BEARER = "bearer "


def bearer_token(headers: Mapping[str, str] | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header: None without the header, "" when
    it is not a bearer token."""
    for name, value in (headers or {}).items():
        if name.lower() == "authorization":
            if value[: len(BEARER)].lower() == BEARER:
                return value[len(BEARER):].strip()
            return ""
    return None
