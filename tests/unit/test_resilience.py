"""RetryPolicy, CircuitBreaker and fallback (shared.models.resilience), with injected sleep,
clock and randomness, and breaker state in the in-memory KeyValueStore."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from shared.cache.memory import MemoryKeyValueStore
from shared.models.errors import (
    CircuitOpen,
    ContextTooLong,
    InvalidModelRequest,
    MalformedProviderResponse,
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from shared.models.resilience import (
    CircuitBreaker,
    RetryPolicy,
    call_with_fallback,
    parse_retry_after,
    stream_with_fallback,
)


class Script:
    """A callable that raises or returns the next scripted outcome, counting calls."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def policy(sleeps: list[float], *, rand: float | Callable[[], float] = 1.0, **kwargs: Any) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps.append, random=rand if callable(rand) else (lambda: rand), **kwargs)


# --- RetryPolicy.call ---


def test_backoff_grows_exponentially_up_to_the_cap():
    sleeps: list[float] = []
    fn = Script(ProviderUnavailable())
    with pytest.raises(ProviderUnavailable):
        policy(sleeps, max_attempts=7, base_delay_s=0.5, max_delay_s=5).call(fn)
    assert fn.calls == 7
    # random() == 1.0 gives the ceiling of each wait: 0.5 * 2**n, capped.
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_stays_within_zero_and_the_ceiling():
    rng = random.Random(7)
    sleeps: list[float] = []
    with pytest.raises(ProviderTimeout):
        policy(sleeps, rand=rng.random, max_attempts=8, base_delay_s=0.5, max_delay_s=4).call(
            Script(ProviderTimeout()))
    ceilings = [0.5, 1, 2, 4, 4, 4, 4]
    assert len(sleeps) == len(ceilings)
    assert all(0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))
    assert len(set(sleeps)) == len(sleeps)  # jittered, not a fixed schedule
    assert any(s < c * 0.9 for s, c in zip(sleeps, ceilings, strict=True))


def test_success_after_retryable_failures():
    sleeps: list[float] = []
    fn = Script(ProviderUnavailable(), MalformedProviderResponse(), "answer")
    assert policy(sleeps).call(fn) == "answer"
    assert fn.calls == 3 and len(sleeps) == 2


def test_retry_after_is_a_floor_on_the_wait():
    sleeps: list[float] = []
    fn = Script(ProviderRateLimited(retry_after_s=4.0), "ok")
    assert policy(sleeps, rand=0.0).call(fn) == "ok"
    assert sleeps == [4.0]


def test_backoff_above_retry_after_is_kept():
    sleeps: list[float] = []
    policy(sleeps, base_delay_s=3).call(Script(ProviderRateLimited(retry_after_s=1.0), "ok"))
    assert sleeps == [3.0]


def test_retry_after_beyond_the_cap_gives_up_at_once():
    sleeps: list[float] = []
    fn = Script(ProviderRateLimited(retry_after_s=30.0), "ok")
    with pytest.raises(ProviderRateLimited) as caught:
        policy(sleeps, max_delay_s=20).call(fn)
    assert fn.calls == 1 and sleeps == []
    assert caught.value.headers["Retry-After"] == "30"  # the caller can pass it on


@pytest.mark.parametrize("error", [ProviderAuthFailed(), InvalidModelRequest(), ContextTooLong()])
def test_non_retryable_errors_are_not_retried(error):
    sleeps: list[float] = []
    fn = Script(error, "ok")
    with pytest.raises(type(error)):
        policy(sleeps).call(fn)
    assert fn.calls == 1 and sleeps == []


def test_other_exceptions_are_not_retried():
    fn = Script(KeyError("bug"), "ok")
    with pytest.raises(KeyError):
        policy([]).call(fn)
    assert fn.calls == 1


def test_circuit_open_is_not_retried():
    fn = Script(CircuitOpen(), "ok")
    with pytest.raises(CircuitOpen):
        policy([]).call(fn)
    assert fn.calls == 1


def test_total_budget_stops_retries_that_would_overrun_it():
    clock = FakeClock(0.0)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    retry = RetryPolicy(max_attempts=10, base_delay_s=1, max_delay_s=8, max_total_s=5, sleep=sleep,
                        clock=clock, random=lambda: 1.0)
    fn = Script(ProviderUnavailable())
    with pytest.raises(ProviderUnavailable):
        retry.call(fn)
    assert sleeps == [1.0, 2.0]  # a third wait of 4 s would end at 7 s > 5 s
    assert fn.calls == 3


def test_invalid_policy():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# --- RetryPolicy.stream ---


def flaky_stream(failures_before: list[BaseException], events: list[str],
                 fail_after: BaseException | None = None) -> tuple[Callable[[], Iterator[str]], list[int]]:
    """A stream factory: the first calls fail before any event, then one streams ``events``
    (and raises ``fail_after`` after them, if given)."""
    calls: list[int] = []

    def start() -> Iterator[str]:
        calls.append(1)
        if len(calls) <= len(failures_before):
            raise failures_before[len(calls) - 1]
        yield from events
        if fail_after is not None:
            raise fail_after

    return start, calls


def test_stream_is_retried_before_its_first_event():
    sleeps: list[float] = []
    start, calls = flaky_stream([ProviderUnavailable(), ProviderTimeout()], ["a", "b"])
    assert list(policy(sleeps).stream(start)) == ["a", "b"]
    assert len(calls) == 3 and len(sleeps) == 2


def test_stream_factory_that_raises_directly_is_retried():
    outcomes: list[object] = [ProviderUnavailable(), iter(["x"])]

    def start() -> Iterator[str]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]

    assert list(policy([]).stream(start)) == ["x"]


def test_stream_is_never_retried_after_its_first_event():
    sleeps: list[float] = []
    start, calls = flaky_stream([], ["a", "b"], fail_after=ProviderUnavailable())
    got: list[str] = []
    with pytest.raises(ProviderUnavailable):
        for event in policy(sleeps).stream(start):
            got.append(event)
    assert got == ["a", "b"]
    assert len(calls) == 1 and sleeps == []


def test_stream_non_retryable_error_before_first_event():
    start, calls = flaky_stream([ProviderAuthFailed()], ["a"])
    with pytest.raises(ProviderAuthFailed):
        list(policy([]).stream(start))
    assert len(calls) == 1


def test_stream_gives_up_after_max_attempts():
    start, calls = flaky_stream([ProviderUnavailable()] * 5, ["a"])
    with pytest.raises(ProviderUnavailable):
        list(policy([], max_attempts=3).stream(start))
    assert len(calls) == 3


def test_closing_the_retried_stream_closes_the_provider_stream():
    closed: list[bool] = []

    def start() -> Iterator[str]:
        try:
            yield from ["a", "b", "c"]
        finally:
            closed.append(True)

    started = []

    def keep() -> Iterator[str]:
        stream = start()
        started.append(stream)  # held here, so only an explicit close() can run its finally
        return stream

    for stop_after in (1, 2):
        closed.clear()
        retried = policy([]).stream(keep)
        for _ in range(stop_after):
            next(retried)
        retried.close()
        assert closed == [True]


# --- CircuitBreaker ---


@pytest.fixture
def store() -> MemoryKeyValueStore:
    return MemoryKeyValueStore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def breaker(store: MemoryKeyValueStore, clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    return CircuitBreaker(store, "openai:gpt-4o", clock=clock, **kwargs)


def fail(cb: CircuitBreaker, times: int, error: BaseException | None = None) -> None:
    for _ in range(times):
        with pytest.raises(type(error or ProviderUnavailable())):
            cb.call(Script(error or ProviderUnavailable()))


def test_breaker_opens_after_the_threshold(store, clock):
    cb = breaker(store, clock, failure_threshold=3)
    fail(cb, 2)
    assert cb.state() == "closed"
    assert cb.call(Script("still works")) == "still works"
    fail(cb, 1)
    assert cb.state() == "open"
    fn = Script("never called")
    with pytest.raises(CircuitOpen) as caught:
        cb.call(fn)
    assert fn.calls == 0
    assert caught.value.headers["Retry-After"] == "30"


def test_breaker_keys_are_hash_tagged_per_provider_and_model(store, clock):
    cb = CircuitBreaker.for_model(store, "openai", "gpt-4o", failure_threshold=1)
    fail(cb, 1)
    assert store.get("cb:{openai:gpt-4o}:state") is not None
    assert CircuitBreaker.for_model(store, "openai", "gpt-4o-mini").state() == "closed"


def test_failures_outside_the_window_do_not_add_up(store, clock):
    cb = breaker(store, clock, failure_threshold=2, window_s=20)
    fail(cb, 1)
    # The counter expires with the window that its first failure started...
    assert 0 < store.ttl("cb:{openai:gpt-4o}:failures") <= 20
    fail(cb, 1)  # ...and a second failure within it opens the breaker
    assert cb.state() == "open"
    cb2 = breaker(store, clock, failure_threshold=2, window_s=20)
    store.delete("cb:{openai:gpt-4o}:state")
    fail(cb2, 1)
    store.delete("cb:{openai:gpt-4o}:failures")  # what the window's expiry does
    fail(cb2, 1)
    assert cb2.state() == "closed"


@pytest.mark.parametrize("error", [ProviderAuthFailed(), InvalidModelRequest(), ContextTooLong()])
def test_errors_of_our_request_do_not_open_the_breaker(store, clock, error):
    cb = breaker(store, clock, failure_threshold=2)
    fail(cb, 5, error)
    assert cb.state() == "closed"


def test_rate_limits_and_timeouts_count(store, clock):
    cb = breaker(store, clock, failure_threshold=2)
    fail(cb, 1, ProviderRateLimited())
    fail(cb, 1, ProviderTimeout())
    assert cb.state() == "open"


def test_half_open_allows_a_single_probe(store, clock):
    cb = breaker(store, clock, failure_threshold=1, open_s=30)
    other = breaker(store, clock, failure_threshold=1, open_s=30)  # another container
    fail(cb, 1)
    clock.now += 29
    with pytest.raises(CircuitOpen):
        cb.call(Script("early"))
    clock.now += 2
    assert cb.state() == "half_open"

    blocked: list[BaseException] = []

    def probe() -> str:
        # While the probe is out, every other caller is turned away.
        for caller in (other, cb):
            try:
                caller.call(Script("second caller"))
            except CircuitOpen as exc:
                blocked.append(exc)
        return "probe ok"

    assert cb.call(probe) == "probe ok"
    assert len(blocked) == 2
    assert cb.state() == "closed" and other.state() == "closed"
    assert other.call(Script("normal")) == "normal"


def test_failed_probe_reopens_the_breaker(store, clock):
    cb = breaker(store, clock, failure_threshold=1, open_s=10)
    fail(cb, 1)
    clock.now += 11
    fail(cb, 1)  # the probe
    assert cb.state() == "open"
    clock.now += 9
    with pytest.raises(CircuitOpen):
        cb.call(Script("x"))
    clock.now += 2
    assert cb.call(Script("recovered")) == "recovered"
    assert cb.state() == "closed"


def test_probe_answered_with_a_request_error_closes_the_breaker(store, clock):
    cb = breaker(store, clock, failure_threshold=1, open_s=10)
    fail(cb, 1)
    clock.now += 11
    fail(cb, 1, InvalidModelRequest())  # the provider answered: it is up
    assert cb.state() == "closed"


def test_probe_lost_to_a_bug_lets_another_caller_probe(store, clock):
    cb = breaker(store, clock, failure_threshold=1, open_s=10)
    fail(cb, 1)
    clock.now += 11
    with pytest.raises(KeyError):
        cb.call(Script(KeyError("ours")))
    assert cb.state() == "half_open"
    assert cb.call(Script("probe")) == "probe"
    assert cb.state() == "closed"


def test_state_is_shared_by_breakers_on_the_same_store(store, clock):
    first = breaker(store, clock, failure_threshold=4)
    second = breaker(store, clock, failure_threshold=4)
    fail(first, 2)
    fail(second, 2)  # the failures add up across containers
    assert first.state() == "open"
    with pytest.raises(CircuitOpen):
        first.call(Script("x"))
    with pytest.raises(CircuitOpen):
        second.call(Script("x"))


def test_breaker_stream_counts_a_failure_after_events(store, clock):
    cb = breaker(store, clock, failure_threshold=1)

    def broken() -> Iterator[str]:
        yield "a"
        raise ProviderUnavailable()

    got: list[str] = []
    with pytest.raises(ProviderUnavailable):
        for event in cb.stream(broken):
            got.append(event)
    assert got == ["a"]
    assert cb.state() == "open"
    with pytest.raises(CircuitOpen):
        next(iter(cb.stream(lambda: iter(["b"]))))


def test_breaker_stream_probe_success_closes(store, clock):
    cb = breaker(store, clock, failure_threshold=1, open_s=5)
    fail(cb, 1)
    clock.now += 6
    assert list(cb.stream(lambda: iter(["a", "b"]))) == ["a", "b"]
    assert cb.state() == "closed"


def test_unreadable_state_is_half_open(store, clock):
    store.set("cb:{openai:gpt-4o}:state", "garbage")
    cb = breaker(store, clock)
    assert cb.state() == "half_open"
    assert cb.call(Script("probe")) == "probe"
    assert cb.state() == "closed"


# --- fallback ---


def test_fallback_is_used_after_a_retryable_failure():
    sleeps: list[float] = []
    primary, fallback = Script(ProviderUnavailable()), Script("from fallback")
    assert call_with_fallback(primary, fallback, policy(sleeps, max_attempts=2)) == "from fallback"
    assert primary.calls == 2 and fallback.calls == 1


def test_fallback_is_used_when_the_circuit_is_open(store, clock):
    cb = breaker(store, clock, failure_threshold=1)
    fail(cb, 1)
    primary = Script("never")
    assert call_with_fallback(lambda: cb.call(primary), Script("fb"), policy([])) == "fb"
    assert primary.calls == 0


def test_fallback_runs_under_the_same_policy():
    sleeps: list[float] = []
    fallback = Script(ProviderTimeout(), "fb")
    assert call_with_fallback(Script(ProviderUnavailable()), fallback, policy(sleeps, max_attempts=2)) == "fb"
    assert fallback.calls == 2


@pytest.mark.parametrize("error", [ProviderAuthFailed(), InvalidModelRequest(), ContextTooLong()])
def test_no_fallback_on_errors_of_our_own(error):
    fallback = Script("fb")
    with pytest.raises(type(error)):
        call_with_fallback(Script(error), fallback, policy([]))
    assert fallback.calls == 0


def test_without_a_fallback_the_error_propagates():
    with pytest.raises(ProviderUnavailable):
        call_with_fallback(Script(ProviderUnavailable()), None, policy([]))


def test_stream_fallback_only_before_the_first_event():
    start, _ = flaky_stream([ProviderUnavailable()] * 3, ["never"])
    assert list(stream_with_fallback(start, lambda: iter(["fb"]), policy([]))) == ["fb"]

    broken, _ = flaky_stream([], ["a"], fail_after=ProviderUnavailable())
    fallback_calls: list[int] = []

    def fallback() -> Iterator[str]:
        fallback_calls.append(1)
        yield "fb"

    got: list[str] = []
    with pytest.raises(ProviderUnavailable):
        for event in stream_with_fallback(broken, fallback, policy([])):
            got.append(event)
    assert got == ["a"] and fallback_calls == []


# --- Retry-After parsing ---


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "12"}, 12.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after-ms": "250", "retry-after": "3"}, 0.25),
    ({"retry-after-ms": "junk", "retry-after": "3"}, 3.0),
    ({"retry-after": "-1"}, None),
    ({"retry-after": "soon"}, None),
    ({}, None),
    (None, None),
])
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now.timestamp) == pytest.approx(90)
    past = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now.timestamp) == 0.0
