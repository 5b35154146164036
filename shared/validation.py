"""The base of every input model (request bodies and the domain inputs they carry): strict about
unknown fields, about types, about numbers the database cannot hold and about text PostgreSQL
cannot store; and the JSON depth guard both HTTP stacks apply before decoding a body.
Neutral: domains and the HTTP layer both use it."""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import datetime
from decimal import Decimal
from itertools import accumulate
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, model_validator

# What the columns hold: an integer field of a request model says which it is bound to, so a
# value out of range is a 422 here rather than NumericValueOutOfRange (a 500) in the database.
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
Int4 = Annotated[int, Field(ge=-(2**31), le=INT4_MAX)]
Int8 = Annotated[int, Field(ge=-(2**63), le=INT8_MAX)]

# Request models are strict (no "2" for 2, no true for 1); these types arrive as JSON strings
# and are validated from Python objects (Powertools validates the decoded body), so they keep
# pydantic's parsing of their string form.
LaxUUID = Annotated[uuid.UUID, Strict(False)]
LaxDatetime = Annotated[datetime, Strict(False)]
LaxDecimal = Annotated[Decimal, Strict(False)]

# Deeper bodies are refused before decoding: the decoder and validators recurse, and no
# request of the API nests anywhere near this far.
MAX_JSON_DEPTH = 64
# A string runs to its closing quote or to the end of the text (so a match never fails and is
# never retried from a later quote: linear on any input); an escape is one unit, so an escaped
# quote never ends a string.
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str | bytes) -> int:
    """How deeply ``text`` nests arrays and objects, without decoding it: strings removed, then
    a running sum over the brackets (C-level passes, no recursion). Malformed text gets some
    number; the decoder refuses it."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if "[" not in text and "{" not in text:
        return 0
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` (any parameters) or a ``+json`` type; no header at all is taken as
    JSON too, as Powertools does. Anything else (``curl -d``'s form encoding, text) is not."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?$")


def _http_url(value: str) -> str:
    """An absolute http(s) URL a client can call: scheme, a well-formed host (name, IPv4 or
    bracketed IPv6) and port. Checked here so a malformed URL is a 422 naming the field, not
    a failure later in the HTTP client."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    host = parts.hostname or ""
    if any(ch.isspace() or ord(ch) < 0x20 for ch in value):
        raise ValueError("a URL must not contain spaces or control characters")
    if not host:
        raise ValueError("the URL has no host")
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            raise ValueError("the URL's IPv6 host is malformed") from None
    elif not _HOSTNAME.match(host):
        raise ValueError("the URL's host is not a valid host name or address")
    if port == 0:
        raise ValueError("the URL's port must be from 1 to 65535")
    return value


# A URL a tenant gives us to call (a model's base_url; tools and HTTP nodes next).
HttpUrlStr = Annotated[str, Field(max_length=500, pattern=r"^https?://"), AfterValidator(_http_url)]


def nul_paths(value: Any, limit: int = 10) -> list[tuple[str | int, ...]]:
    """Where ``value`` holds a NUL character (in a string or a key), as paths of keys and
    indexes (the first ``limit``, in document order)."""
    # Iterative, with each path a linked (parent, key) pair built out only when it is needed: a
    # deeply nested value cannot exhaust the stack or copy its path at every level.
    found: list[Any] = []
    pending: list[tuple[Any, Any]] = [(None, value)]
    while pending and len(found) < limit:
        link, item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                found.append(link)
        elif isinstance(item, dict):
            children: list[tuple[Any, Any]] = []
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    children.append(((link, key), key))  # the key itself, in its place
                children.append(((link, key), child))
            pending.extend(reversed(children))
        elif isinstance(item, list | tuple):
            pending.extend(reversed([((link, index), child) for index, child in enumerate(item)]))
    paths = []
    for link in found:
        parts: list[str | int] = []
        while link is not None:
            link, key = link
            parts.append(key)
        paths.append(tuple(reversed(parts)))
    return paths


def _path_text(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    # A path through deep nesting is cut: its start and end say enough.
    return (text if len(text) <= 200 else f"{text[:100]}…{text[-100:]}") or "the body"


class RequestModel(BaseModel):
    # Unknown fields are a client mistake worth reporting, not silently dropping; so is a value
    # of the wrong JSON type (strict). NaN and infinities are no numbers PostgreSQL's JSON holds.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail in the database.
        paths = nul_paths(data, limit=1)
        if paths:
            where = _path_text(paths[0]).replace("\x00", "\\u0000")
            raise ValueError(f"{where} holds a NUL (\\u0000) character, which text cannot store: remove it")
        return data


def check_json_payload(raw: str | bytes, content_type: str | None) -> None:
    """A request body, checked before it is decoded (both HTTP stacks): declared JSON (else 415
    saying which content type to send), and no deeper than the decoder and the validators can
    recurse."""
    from shared.errors import JsonTooDeep, UnsupportedMediaType

    if not is_json_media_type(content_type):
        raise UnsupportedMediaType.json_expected(content_type)
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise JsonTooDeep(MAX_JSON_DEPTH)
