"""Retries, circuit breaking and fallback for model provider calls (docs/architecture.md §7.2).

Composition used by the gateway, outermost first::

    call_with_fallback(
        lambda: policy.call(lambda: primary_breaker.call(lambda: provider.chat(...))),
        lambda: policy.call(lambda: fallback_breaker.call(lambda: other.chat(...))),
    )

- ``RetryPolicy`` retries what ``ProviderError.retryable`` says may succeed on a second try,
  with capped exponential backoff and full jitter, honouring the provider's ``Retry-After``.
- ``CircuitBreaker`` keeps its state in a ``KeyValueStore`` (Redis in AWS) so every container
  calling the same provider+model sees the same state: one container's failures protect them all.
- Streams are retried only until their first event: a partial generation is never replayed,
  because the caller has already forwarded it.

Nothing here imports an SDK: this module is on every model call's path and must stay cheap.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Literal, TypeVar

from shared.cache.ports import KeyValueStore
from shared.models.errors import CircuitOpen, ProviderError, ProviderRateLimited

logger = logging.getLogger(__name__)

T = TypeVar("T")


def parse_retry_after(headers: Mapping[str, str] | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI-style, more precise) or ``retry-after``
    (delta-seconds or an HTTP date). None when absent or unreadable: the policy then uses its
    own backoff. ``headers`` must look keys up case-insensitively (httpx and botocore headers do)
    or have lower-case keys."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            millis = float(value)
        except ValueError:
            millis = math.nan
        if math.isfinite(millis) and millis >= 0:
            return millis / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; be lenient with ones that omit it
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _close(iterator: Iterator[object]) -> None:
    """Release a stream we abandon (a generator's ``finally`` closes its HTTP response)."""
    close = getattr(iterator, "close", None)
    if callable(close):
        close()


@dataclass
class RetryPolicy:
    """Bounded retries with capped exponential backoff.

    Attempt ``n`` (1-based) that failed is followed by a wait of ``min(max_delay_s,
    base_delay_s * 2**(n-1))``, scaled by a uniform random factor in [0, 1) with full jitter
    (AWS's recommendation: it spreads the retries of many clients that failed together).
    A ``Retry-After`` from the provider is a floor on the wait; one beyond ``max_delay_s`` makes
    the policy give up at once, since waiting that long would hold a Lambda (and the user)
    hostage; the caller can fall back or surface the 429 with its Retry-After instead.
    """

    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    jitter: Literal["full", "none"] = "full"
    # Total budget across attempts and waits (None: unbounded); a wait that would end past it
    # is not started. Lambda has a hard deadline, so callers pass what is left of it.
    max_total_s: float | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("delays must not be negative")

    def backoff_s(self, failed_attempt: int) -> float:
        """The wait after ``failed_attempt`` (1-based), before any Retry-After floor."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (failed_attempt - 1))
        return ceiling * self.random() if self.jitter == "full" else ceiling

    def _wait_before_retry(self, exc: ProviderError, failed_attempt: int, started: float) -> float | None:
        """The wait before the next attempt, or None to give up and re-raise ``exc``."""
        # CircuitOpen is "retryable" in the sense that a later call may succeed, but within one
        # call it stays open for open_s: retrying only burns the budget the fallback needs.
        if not exc.retryable or isinstance(exc, CircuitOpen) or failed_attempt >= self.max_attempts:
            return None
        delay = self.backoff_s(failed_attempt)
        if isinstance(exc, ProviderRateLimited) and exc.retry_after_s is not None:
            if exc.retry_after_s > self.max_delay_s:
                return None
            delay = max(delay, exc.retry_after_s)
        if self.max_total_s is not None and self.clock() - started + delay > self.max_total_s:
            return None
        return delay

    def call(self, fn: Callable[[], T]) -> T:
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except ProviderError as exc:
                delay = self._wait_before_retry(exc, attempt, started)
                if delay is None:
                    raise
                logger.info("model call failed (%s), retry %d/%d in %.3f s",
                            exc.code, attempt, self.max_attempts - 1, delay)
                self.sleep(delay)

    def stream(self, fn: Callable[[], Iterator[T]]) -> Iterator[T]:
        """Events of ``fn()``, retried like ``call`` until the first event arrives, never after.

        Once an event has been yielded the caller may have shown it to a user: replaying the
        generation would duplicate or contradict it, so later failures propagate as they are.
        """
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            iterator: Iterator[T] | None = None
            try:
                iterator = fn()
                first = next(iterator)
            except StopIteration:
                return
            except ProviderError as exc:
                if iterator is not None:
                    _close(iterator)
                delay = self._wait_before_retry(exc, attempt, started)
                if delay is None:
                    raise
                logger.info("model stream failed before its first event (%s), retry %d/%d in %.3f s",
                            exc.code, attempt, self.max_attempts - 1, delay)
                self.sleep(delay)
                continue
            try:
                yield first
                yield from iterator
            finally:
                # A caller that stops early closes us; close the provider's stream with us
                # (its HTTP response) rather than leave that to the garbage collector.
                _close(iterator)
            return


class CircuitBreaker:
    """A circuit breaker whose state is shared through a ``KeyValueStore``.

    Keys (one hash tag per provider+model, so they share a cluster slot)::

        cb:{<provider>:<model>}:failures  counter of counted failures, expires window_s after
                                          the first one (a fixed window)
        cb:{<provider>:<model>}:state     "open:<unix time it may be probed>" while open or
                                          half-open; absent while closed
        cb:{<provider>:<model>}:probe     held by the one caller allowed to probe

    Closed: one GET per call. ``failure_threshold`` counted failures within a window open the
    circuit: calls raise ``CircuitOpen`` without reaching the provider for ``open_s``. After
    that the circuit is half-open: the first caller to take the probe key (SET NX) makes one
    trial call; success closes the circuit, a counted failure re-opens it for ``open_s``.
    Other callers keep getting ``CircuitOpen`` while the probe is out. The probe key expires
    (after ``probe_ttl_s``) so a probe lost with its container cannot wedge the circuit.

    The open deadline is stored as a wall-clock time rather than as the key's TTL so that the
    half-open state survives the end of the open period (a TTL would erase the "it failed"
    fact along with the key). Lambda clocks are NTP-synchronised, well within a second.

    Counted failures: retryable provider errors (unavailable, timeout, malformed answer, rate
    limited); a provider that rejects our request or credentials is up and answering, so those
    never open the circuit. The window is fixed and success does not reset the count (that
    would cost a write per call): size ``failure_threshold`` to the model's traffic.
    """

    def __init__(self, store: KeyValueStore, key: str, failure_threshold: int = 5, window_s: float = 30,
                 open_s: float = 30, *, probe_ttl_s: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self._store = store
        # Braces would break the hash tag; provider and model names never need them.
        tag = key.replace("{", "").replace("}", "")
        self.key = tag
        self._failures_key = f"cb:{{{tag}}}:failures"
        self._state_key = f"cb:{{{tag}}}:state"
        self._probe_key = f"cb:{{{tag}}}:probe"
        self.failure_threshold = failure_threshold
        self.window_s = window_s
        self.open_s = open_s
        self._probe_ttl = max(1, math.ceil(probe_ttl_s if probe_ttl_s is not None else max(open_s, 30)))
        # The half-open marker outlives the open period; after this long with nobody probing
        # the circuit closes by itself (the next call is then an ordinary one).
        self._state_ttl = max(1, math.ceil(open_s)) + 600
        self._clock = clock

    @classmethod
    def for_model(cls, store: KeyValueStore, provider: str, model: str, *, failure_threshold: int = 5,
                  window_s: float = 30, open_s: float = 30) -> CircuitBreaker:
        return cls(store, f"{provider}:{model}", failure_threshold, window_s, open_s)

    @staticmethod
    def counts(exc: BaseException) -> bool:
        return isinstance(exc, ProviderError) and exc.retryable and not isinstance(exc, CircuitOpen)

    # --- state ---

    def state(self) -> Literal["closed", "open", "half_open"]:
        value = self._store.get(self._state_key)
        if value is None:
            return "closed"
        return "open" if self._clock() < self._open_until(value) else "half_open"

    @staticmethod
    def _open_until(value: str) -> float:
        _, _, until = value.partition(":")
        try:
            return float(until)
        except ValueError:
            # Unreadable (foreign or corrupted) state: half-open, so one probe decides.
            return 0.0

    def _admit(self) -> bool:
        """Raise CircuitOpen, or return whether this call is the half-open probe."""
        value = self._store.get(self._state_key)
        if value is None:
            return False
        until = self._open_until(value)
        now = self._clock()
        if now < until:
            raise CircuitOpen(details={"circuit": self.key, "retry_after_s": round(until - now, 3)},
                              headers={"Retry-After": str(max(1, math.ceil(until - now)))})
        if self._store.set(self._probe_key, "1", ttl_s=self._probe_ttl, only_if_absent=True):
            logger.info("circuit %s half-open: probing", self.key)
            return True
        raise CircuitOpen(details={"circuit": self.key, "retry_after_s": 1.0}, headers={"Retry-After": "1"})

    def _open(self) -> None:
        until = self._clock() + self.open_s
        self._store.set(self._state_key, f"open:{until:.3f}", ttl_s=self._state_ttl)
        self._store.delete(self._failures_key)
        logger.warning("circuit %s opened for %.0f s", self.key, self.open_s)

    def _close(self) -> None:
        self._store.delete(self._state_key)
        self._store.delete(self._failures_key)
        self._store.delete(self._probe_key)
        logger.info("circuit %s closed", self.key)

    def record_failure(self, *, probe: bool = False) -> None:
        if probe:
            self._open()
            self._store.delete(self._probe_key)
            return
        failures = self._store.incr(self._failures_key, ttl_s=max(1, math.ceil(self.window_s)))
        if failures >= self.failure_threshold:
            self._open()

    def _settle(self, exc: BaseException | None, probe: bool) -> None:
        if exc is None:
            if probe:
                self._close()
        elif self.counts(exc):
            self.record_failure(probe=probe)
        elif probe:
            if isinstance(exc, ProviderError):
                # The provider answered (rejected the request or the key): it is up.
                self._close()
            else:
                # Our own failure says nothing about the provider: let another caller probe.
                self._store.delete(self._probe_key)

    # --- calls ---

    def call(self, fn: Callable[[], T]) -> T:
        probe = self._admit()
        try:
            result = fn()
        except BaseException as exc:
            self._settle(exc, probe)
            raise
        self._settle(None, probe)
        return result

    def stream(self, fn: Callable[[], Iterator[T]]) -> Iterator[T]:
        """``fn()``'s events; the stream's outcome (its end, or an error before or during it)
        counts as the call's. A caller that stops reading early settles nothing."""
        probe = self._admit()
        try:
            yield from fn()
        except GeneratorExit:
            if probe:
                self._store.delete(self._probe_key)
            raise
        except BaseException as exc:
            self._settle(exc, probe)
            raise
        self._settle(None, probe)


def call_with_fallback(primary: Callable[[], T], fallback: Callable[[], T] | None,
                       policy: RetryPolicy | None = None) -> T:
    """``primary`` under ``policy``; if it still fails with a retryable provider error (or its
    circuit is open), ``fallback`` once under the same policy.

    Non-retryable errors do not fall back: an auth failure, an invalid request or a context
    that is too long describe *our* request or configuration, not the provider's health.
    Another model would most likely reject the same request too, and silently answering with
    a different model would hide a misconfiguration the user must see and fix.
    """
    policy = policy or RetryPolicy()
    try:
        return policy.call(primary)
    except ProviderError as exc:
        if fallback is None or not exc.retryable:
            raise
        logger.warning("primary model failed (%s); using the fallback model", exc.code)
        return policy.call(fallback)


def stream_with_fallback(primary: Callable[[], Iterator[T]], fallback: Callable[[], Iterator[T]] | None,
                         policy: RetryPolicy | None = None) -> Iterator[T]:
    """Like ``call_with_fallback`` for streams: the fallback is used only if the primary failed
    before its first event (after that the partial answer is the answer, and its error is
    raised)."""
    policy = policy or RetryPolicy()
    yielded = False
    events = policy.stream(primary)
    try:
        for event in events:
            yielded = True
            yield event
        return
    except ProviderError as exc:
        if yielded or fallback is None or not exc.retryable:
            raise
        logger.warning("primary model failed before streaming (%s); using the fallback model", exc.code)
    finally:
        _close(events)
    yield from policy.stream(fallback)
