"""Redis (Valkey) adapters for ElastiCache Serverless, which only speaks cluster mode.

Every operation touches ONE key, or keys that share a hash tag, and anything that must be
atomic over several commands is one Lua script, so the same code runs on a cluster client
(production) and a plain client (a standalone server someone points ``REDIS_URL`` at).

``redis`` is imported inside functions: this module is only imported when ``REDIS_URL`` is
set, and even then the import cost is paid by the first connection, not by every caller.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from shared.cache.memory import check_rate_args, check_stream_args, parse_stream_id
from shared.cache.ports import RateDecision, StreamEvent

DEFAULT_SOCKET_TIMEOUT_S = 5.0
DEFAULT_CONNECT_TIMEOUT_S = 2.0
DEFAULT_HEALTH_CHECK_INTERVAL_S = 30
DEFAULT_RETRIES = 3

# The application's RBAC user on ElastiCache (infra/data.py creates it with this access string).
# Every key (no key-name convention to scope by); every command but the @dangerous ones
# (FLUSHALL, KEYS, CONFIG, DEBUG, MONITOR, INFO, CLIENT KILL...): the adapters run strings,
# INCRBY/EXPIRE/TTL, hashes, streams (XADD/XREAD/XRANGE), EVALSHA/SCRIPT LOAD and TIME in
# scripts, and the cluster client's CLUSTER SLOTS; no pub/sub channels (none used).
# tests/integration/test_cache_rbac.py runs the adapters against a server with exactly this.
APP_USER = "stratus-app"
APP_ACCESS_STRING = "on ~* +@all -@dangerous"

# A blocking XREAD must return before the socket read times out; longer waits are split.
_MAX_BLOCK_SLICE_MS = 2_000  # well under DEFAULT_SOCKET_TIMEOUT_S


def connect(url: str, cluster: bool, *, socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
            connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
            health_check_interval_s: int = DEFAULT_HEALTH_CHECK_INTERVAL_S,
            retries: int = DEFAULT_RETRIES, username: str | None = None,
            password: Callable[[], str] | None = None) -> Any:
    """A client for ``url``: ``RedisCluster`` when ``cluster`` (ElastiCache Serverless, use a
    ``rediss://`` URL for its TLS), else ``Redis``. Strings in, strings out.

    With ``password`` every new connection (of every node) sends ``AUTH [username] <password>``,
    asking ``password()`` each time; without it the URL's own ``user:password@``, if any."""
    import redis
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.cluster import RedisCluster
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    # Only connection errors are retried by the standalone client: a timed-out INCR or XADD
    # may have been applied, and retrying it would apply it twice.
    retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries,
                  supported_errors=(RedisConnectionError,))
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": connect_timeout_s,
        "health_check_interval": health_check_interval_s,
        "retry": retry,
    }
    if password is not None:
        options["credential_provider"] = _credentials(username, password)
    if cluster:
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


def _credentials(username: str | None, password: Callable[[], str]) -> Any:
    from redis.credentials import CredentialProvider

    class Credentials(CredentialProvider):
        def get_credentials(self) -> tuple[str] | tuple[str, str]:
            return (username, password()) if username else (password(),)

    return Credentials()


def _script(client: Any, source: str) -> Any:
    # register_script keeps the SHA and re-loads the script on NOSCRIPT (failover, new node).
    return client.register_script(source)


class RedisKeyValueStore:
    _INCR = """
local existed = redis.call('EXISTS', KEYS[1])
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if existed == 0 and ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return value
"""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._incr = _script(client, self._INCR)

    def get(self, key: str) -> str | None:
        value = self._client.get(key)
        return None if value is None else str(value)

    def set(self, key: str, value: str, *, ttl_s: int | None = None, only_if_absent: bool = False) -> bool:
        stored = self._client.set(key, value, ex=ttl_s if ttl_s else None, nx=only_if_absent)
        return bool(stored)

    def delete(self, key: str) -> bool:
        return int(self._client.delete(key)) > 0

    def incr(self, key: str, amount: int = 1, *, ttl_s: int | None = None) -> int:
        """Atomic: the TTL is set only by the call that creates the key."""
        return int(self._incr(keys=[key], args=[int(amount), int(ttl_s or 0)]))

    def ttl(self, key: str) -> int | None:
        seconds = int(self._client.ttl(key))
        return seconds if seconds >= 0 else None


class RedisRateLimiter:
    """Token bucket in one hash key ``rl:{<bucket>}`` (fields ``tokens`` and ``ts``), updated
    by one Lua script that reads the server clock, so Lambdas with skewed clocks agree."""

    _ACQUIRE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2]) / 1000.0
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
end
tokens = math.min(capacity, tokens)
local allowed = 0
local retry_ms = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry_ms = math.ceil((cost - tokens) / rate)
end
local reset_ms = math.ceil((capacity - tokens) / rate)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'ts', string.format('%d', math.max(now, ts)))
redis.call('PEXPIRE', KEYS[1], reset_ms + 1000)
return {allowed, string.format('%.6f', tokens), retry_ms, reset_ms}
"""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._acquire = _script(client, self._ACQUIRE)

    @staticmethod
    def key(bucket: str) -> str:
        return "rl:{" + bucket + "}"

    def acquire(self, bucket: str, *, capacity: int, refill_per_s: float, cost: int = 1) -> RateDecision:
        check_rate_args(capacity, refill_per_s, cost)
        allowed, tokens, retry_ms, reset_ms = self._acquire(
            keys=[self.key(bucket)], args=[int(capacity), repr(float(refill_per_s)), int(cost)])
        return RateDecision(allowed=bool(int(allowed)), limit=capacity,
                            remaining=max(0, math.floor(float(tokens) + 1e-9)),
                            retry_after_s=int(retry_ms) / 1000, reset_s=int(reset_ms) / 1000)


class RedisEventStream:
    """Redis Streams under ``stream:{<stream>}``: XADD + EXPIRE in one script, XREAD to read."""

    _APPEND = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[2], 'data', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return id
"""

    def __init__(self, client: Any, *, max_block_slice_ms: int = _MAX_BLOCK_SLICE_MS) -> None:
        self._client = client
        self._append = _script(client, self._APPEND)
        self._max_block_slice_ms = max(1, max_block_slice_ms)

    @staticmethod
    def key(stream: str) -> str:
        return "stream:{" + stream + "}"

    def append(self, stream: str, event_type: str, data: dict[str, Any], *,
               ttl_s: int = 86_400, maxlen: int = 10_000) -> str:
        """Trimming is approximate (``MAXLEN ~``): at least the last ``maxlen`` events are kept."""
        check_stream_args(ttl_s=ttl_s, maxlen=maxlen)
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        return str(self._append(keys=[self.key(stream)],
                                args=[int(maxlen), event_type, payload, int(ttl_s)]))

    def read(self, stream: str, after_id: str | None = None, *, count: int = 100,
             block_ms: int = 0) -> list[StreamEvent]:
        check_stream_args(count=count)
        if after_id is None:
            start = "0-0"
        else:
            ms, seq = parse_stream_id(after_id)
            start = f"{ms}-{seq}"
        key = self.key(stream)
        deadline = time.monotonic() + max(0, block_ms) / 1000
        while True:
            block: int | None = None
            if block_ms > 0:
                remaining_ms = math.ceil((deadline - time.monotonic()) * 1000)
                if remaining_ms <= 0:
                    return []
                block = min(remaining_ms, self._max_block_slice_ms)
            response = self._client.xread({key: start}, count=count, block=block)
            events = _events(response, key)
            if events or block is None:
                return events


def _events(response: Any, key: str) -> list[StreamEvent]:
    """XREAD's reply as events; RESP2 gives ``[[key, entries]]``, RESP3 ``{key: [entries]}``."""
    if not response:
        return []
    if isinstance(response, dict):
        groups: list[Any] = [(name, entries) for name, entries in response.items()]
    else:
        groups = list(response)
    events: list[StreamEvent] = []
    for name, entries in groups:
        if name != key:
            continue
        nested = entries and isinstance(entries[0], list) and entries[0]
        if nested and isinstance(entries[0][0], (list, tuple)):
            entries = entries[0]  # RESP3 form: {key: [[(id, fields), ...]]}
        for entry_id, fields in entries:
            fields = fields or {}
            events.append(StreamEvent(id=str(entry_id), type=str(fields.get("type", "")),
                                      data=json.loads(fields.get("data") or "{}")))
    return events
