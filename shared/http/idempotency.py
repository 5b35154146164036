"""``Idempotency-Key`` on slow POST routes (docs/adr/0047): a client that retries a slow POST after
a timeout (the API gives up at 30 s while the function may still finish) sends the same key and
gets the first answer back instead of a second write (agent versions, manual segments).

The key is scoped to the tenant, the route and the key's hash, kept in the cache (Redis in AWS)
for a day with a hash of the request body: the same key with another body is refused (409), a
key whose first request is still running answers 409 too (retry later), and an answer of 5xx
is not kept (the retry runs again). Requests without the header behave as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.cache.ports import KeyValueStore
from shared.catalog import Function, Http
from shared.errors import BadRequest, Conflict

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# A first request holds its key while it runs: longer than any HTTP function (28 s).
PENDING_TTL_S = 60
KEPT_TTL_S = 86_400
# Larger answers are not kept (the retry then runs again, as without a key).
MAX_KEPT_BYTES = 256 * 1024


# POSTs whose function may run longer than this can outlive a client's patience (and the API's
# 30 s): they take the key. The quick ones (10 s) never reach the API's limit, and some of them
# answer secrets once (API keys, owner tokens), which must not be kept in the cache.
SLOW_AFTER_S = 10


def takes_idempotency_key(function: Function) -> bool:
    """A POST route of a function allowed more than ``SLOW_AFTER_S`` (derived from the catalog
    entry, so a slow POST added later takes the key too)."""
    return (isinstance(function.trigger, Http) and function.trigger.method == "POST"
            and function.timeout_s > SLOW_AFTER_S)


def idempotency_key(headers: dict[str, str] | None) -> str | None:
    for name, value in (headers or {}).items():
        if name.lower() == HEADER:
            if not value or len(value) > MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
                raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                                 code="biz_idempotency_key_invalid")
            return value
    return None


def _body_hash(event: dict[str, Any]) -> str:
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else str(body).encode()
    return hashlib.sha256(raw).hexdigest()


@dataclass
class Claim:
    """A request's hold on its key: ``replay`` is the kept answer of an earlier request."""

    store: KeyValueStore | None
    cache_key: str
    body_hash: str
    replay: dict[str, Any] | None = None

    def finish(self, result: dict[str, Any]) -> None:
        """Keep the answer for the key's retries (a 5xx or an oversized one frees the key instead)."""
        if self.store is None:
            return
        record = json.dumps({"state": "done", "body": self.body_hash, "result": result}, default=str)
        if int(result.get("statusCode", 500)) >= 500 or len(record) > MAX_KEPT_BYTES:
            self.store.delete(self.cache_key)
            return
        self.store.set(self.cache_key, record, ttl_s=KEPT_TTL_S)

    def abandon(self) -> None:
        if self.store is not None:
            self.store.delete(self.cache_key)


NO_CLAIM = Claim(None, "", "")


def claim(event: dict[str, Any], tenant: Any, route_key: str, store: Callable[[], KeyValueStore]) -> Claim:
    """Take the request's key, or find the answer kept for it. No key (or no tenant): no claim."""
    key = idempotency_key(event.get("headers"))
    if key is None or tenant is None:
        return NO_CLAIM
    kv = store()
    digest = hashlib.sha256(key.encode()).hexdigest()
    cache_key = f"idem:{{{tenant}}}:{route_key}:{digest}"
    body_hash = _body_hash(event)
    pending = json.dumps({"state": "pending", "body": body_hash})
    if kv.set(cache_key, pending, ttl_s=PENDING_TTL_S, only_if_absent=True):
        return Claim(kv, cache_key, body_hash)
    found = kv.get(cache_key)
    record: dict[str, Any] = json.loads(found) if found else {"state": "pending", "body": body_hash}
    if record["body"] != body_hash:
        raise Conflict("This Idempotency-Key was used with another request body", code="biz_idempotency_key_reused")
    if record["state"] != "done":
        raise Conflict("A request with this Idempotency-Key is still running; retry shortly",
                       code="biz_idempotency_in_progress")
    result = dict(record["result"])
    result["headers"] = {**(result.get("headers") or {}), REPLAYED_HEADER: "true"}
    return Claim(None, cache_key, body_hash, replay=result)
