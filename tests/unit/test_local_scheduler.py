"""The local scheduler: EventBridge rate and cron expressions, and firing the catalog's
schedules with a fake clock."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from functions.catalog import by_name
from infra.local.invoker import FunctionError, LocalInvoker
from infra.local.scheduler import CronExpression, LocalScheduler, RateExpression, parse_schedule
from tests.support.events import load_event


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def cron(expression: str) -> CronExpression:
    parsed = parse_schedule(expression)
    assert isinstance(parsed, CronExpression)
    return parsed


# Rate ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("expression", "period"), [
    ("rate(1 minute)", timedelta(minutes=1)),
    ("rate(15 minutes)", timedelta(minutes=15)),
    ("rate(1 hour)", timedelta(hours=1)),
    ("rate(6 hours)", timedelta(hours=6)),
    ("rate(1 day)", timedelta(days=1)),
    ("rate(7 days)", timedelta(days=7)),
])
def test_rate_period(expression: str, period: timedelta) -> None:
    parsed = parse_schedule(expression)
    assert parsed == RateExpression(period)
    assert parsed.next_after(utc(2026, 11, 21, 10, 7)) == utc(2026, 11, 21, 10, 7) + period


# Cron ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("after", "expected"), [
    (utc(2026, 11, 21, 2, 59, 30), utc(2026, 11, 21, 3, 0)),
    # Strictly after: a run at 03:00 is followed by tomorrow's.
    (utc(2026, 11, 21, 3, 0), utc(2026, 11, 22, 3, 0)),
    (utc(2026, 11, 21, 3, 0, 1), utc(2026, 11, 22, 3, 0)),
    (utc(2026, 12, 31, 23, 0), utc(2027, 1, 1, 3, 0)),
])
def test_cron_daily_at_three(after: datetime, expected: datetime) -> None:
    assert cron("cron(0 3 * * ? *)").next_after(after) == expected


@pytest.mark.parametrize(("after", "expected"), [
    (utc(2026, 11, 21, 10, 7), utc(2026, 11, 21, 10, 15)),
    (utc(2026, 11, 21, 10, 15), utc(2026, 11, 21, 10, 30)),
    (utc(2026, 11, 21, 10, 45), utc(2026, 11, 21, 11, 0)),
    (utc(2026, 11, 21, 23, 59, 59), utc(2026, 11, 22, 0, 0)),
])
def test_cron_every_fifteen_minutes(after: datetime, expected: datetime) -> None:
    parsed = cron("cron(*/15 * * * ? *)")
    assert parsed.minutes == frozenset({0, 15, 30, 45})
    assert parsed.next_after(after) == expected


@pytest.mark.parametrize(("after", "expected"), [
    # 2026-11-20 is a Friday: after Friday's run comes Monday's.
    (utc(2026, 11, 20, 9, 0), utc(2026, 11, 23, 9, 0)),
    (utc(2026, 11, 21, 8, 0), utc(2026, 11, 23, 9, 0)),  # Saturday
    (utc(2026, 11, 23, 8, 59), utc(2026, 11, 23, 9, 0)),  # Monday
    (utc(2026, 11, 24, 9, 30), utc(2026, 11, 25, 9, 0)),  # Tuesday, after the run
])
def test_cron_weekdays_at_nine(after: datetime, expected: datetime) -> None:
    parsed = cron("cron(0 9 ? * MON-FRI *)")
    assert parsed.days_of_week == frozenset({2, 3, 4, 5, 6})
    assert parsed.days_of_month is None
    assert parsed.next_after(after) == expected


def test_cron_day_of_week_one_is_sunday() -> None:
    assert cron("cron(30 6 ? * 1 *)").next_after(utc(2026, 11, 21, 12, 0)) == utc(2026, 11, 22, 6, 30)
    assert cron("cron(30 6 ? * SUN *)") == cron("cron(30 6 ? * 1 *)")


def test_cron_lists_names_ranges_and_steps() -> None:
    parsed = cron("cron(5/20 8-10,22 1,15 JAN,jul ? *)")
    assert parsed.minutes == frozenset({5, 25, 45})
    assert parsed.hours == frozenset({8, 9, 10, 22})
    assert parsed.days_of_month == frozenset({1, 15})
    assert parsed.months == frozenset({1, 7})
    assert parsed.next_after(utc(2026, 11, 21)) == utc(2027, 1, 1, 8, 5)
    assert parsed.next_after(utc(2027, 1, 1, 10, 45)) == utc(2027, 1, 1, 22, 5)
    assert parsed.next_after(utc(2027, 1, 1, 22, 45)) == utc(2027, 1, 15, 8, 5)


def test_cron_year_field_and_expressions_that_never_fire_again() -> None:
    assert cron("cron(0 0 1 1 ? 2027-2028)").next_after(utc(2026, 11, 21)) == utc(2027, 1, 1)
    assert cron("cron(0 0 1 1 ? 2027)").next_after(utc(2027, 6, 1)) is None
    # February 31st does not exist.
    assert cron("cron(0 0 31 2 ? *)").next_after(utc(2026, 11, 21)) is None


@pytest.mark.parametrize(("expression", "message"), [
    ("rate(1 minutes)", "must use the unit 'minute'"),
    ("rate(5 minute)", "must use the unit 'minutes'"),
    ("rate(0 minutes)", "positive integer"),
    ("rate(2 weeks)", "unknown rate unit 'weeks'"),
    ("rate(-1 day)", "invalid schedule expression"),
    ("every day at 3", "invalid schedule expression"),
    ("cron(0 3 * * ?)", "needs 6 fields"),
    ("cron(0 3 * * * *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 3 ? * ? *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 ? * * ? *)", "'?' is only allowed in day-of-month or day-of-week"),
    ("cron(60 3 * * ? *)", "minutes value 60 is outside 0-59"),
    ("cron(0 24 * * ? *)", "hours value 24 is outside 0-23"),
    ("cron(0 3 0 * ? *)", "day-of-month value 0 is outside 1-31"),
    ("cron(0 3 * 13 ? *)", "month value 13 is outside 1-12"),
    ("cron(0 3 ? * 8 *)", "day-of-week value 8 is outside 1-7"),
    ("cron(0 3 * * ? 1969)", "year value 1969 is outside 1970-2199"),
    ("cron(0 3 ? * FUNDAY *)", "invalid day-of-week value 'FUNDAY'"),
    ("cron(0 3 L * ? *)", "uses L, W or #"),
    ("cron(0 3 15W * ? *)", "uses L, W or #"),
    ("cron(0 3 ? * 6#3 *)", "uses L, W or #"),
    ("cron(30-10 * * * ? *)", "runs backwards"),
    ("cron(*/0 * * * ? *)", "invalid step '0'"),
])
def test_invalid_expressions_raise_clear_errors(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_schedule(expression)
    assert expression in str(info.value)


# The scheduler -----------------------------------------------------------------------------
class FakeInvoker:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        self.calls.append((name, event))
        if self.fail:
            raise FunctionError(name, "RuntimeError", "boom")
        return {"ok": True}


class FakeClocks:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = utc(2026, 11, 21, 3, 0)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


def make_scheduler(invoker: FakeInvoker, clocks: FakeClocks) -> LocalScheduler:
    # Only the daily purge: the timings below are written for its rate(1 day).
    return LocalScheduler(cast(LocalInvoker, invoker), clock=lambda: clocks.mono, now=lambda: clocks.wall,
                          functions=[by_name()["purge-start"]])


def test_rate_schedule_fires_one_period_after_start_with_a_scheduled_event() -> None:
    invoker, clocks = FakeInvoker(), FakeClocks()
    scheduler = make_scheduler(invoker, clocks)
    assert "purge-start" in scheduler.names  # rate(1 day) in the catalog
    assert scheduler.next_run("purge-start") == utc(2026, 11, 22, 3, 0)

    assert scheduler.run_pending() == pytest.approx(86_400)
    clocks.advance(86_399)
    scheduler.run_pending()
    assert invoker.calls == []

    clocks.advance(1)
    scheduler.run_pending()
    assert [name for name, _ in invoker.calls] == ["purge-start"]
    event = invoker.calls[0][1]
    sample = load_event("eventbridge_schedule")
    assert set(event) == set(sample)
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["time"] == "2026-11-22T03:00:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/stratus-purge-start"]
    assert scheduler.next_run("purge-start") == utc(2026, 11, 23, 3, 0)


def test_missed_periods_are_skipped_not_fired_in_a_burst() -> None:
    invoker, clocks = FakeInvoker(), FakeClocks()
    scheduler = make_scheduler(invoker, clocks)
    clocks.advance(3.5 * 86_400)
    scheduler.run_pending()
    assert len(invoker.calls) == 1
    assert scheduler.next_run("purge-start") == utc(2026, 11, 25, 3, 0)


def test_a_failed_firing_is_logged_and_the_next_one_still_happens(caplog: pytest.LogCaptureFixture) -> None:
    invoker, clocks = FakeInvoker(fail=True), FakeClocks()
    scheduler = make_scheduler(invoker, clocks)
    clocks.advance(86_400)
    with caplog.at_level(logging.ERROR, logger="infra.local.scheduler"):
        scheduler.run_pending()
    failures = [r for r in caplog.records if "purge-start" in r.getMessage()]
    assert failures and failures[0].exc_info is not None  # logged with its stack
    clocks.advance(86_400)
    scheduler.run_pending()
    assert len(invoker.calls) == 2  # not retried, but the next day fires


def test_fire_runs_now_without_moving_the_schedule() -> None:
    invoker, clocks = FakeInvoker(), FakeClocks()
    scheduler = make_scheduler(invoker, clocks)
    assert scheduler.fire("purge-start") == {"ok": True}
    assert invoker.calls[0][1]["time"] == "2026-11-21T03:00:00Z"
    assert scheduler.next_run("purge-start") == utc(2026, 11, 22, 3, 0)
    with pytest.raises(LookupError, match="no scheduled function named 'purge-table'"):
        scheduler.fire("purge-table")
    with pytest.raises(FunctionError):
        make_scheduler(FakeInvoker(fail=True), clocks).fire("purge-start")


def test_background_thread_starts_and_stops_promptly() -> None:
    invoker, clocks = FakeInvoker(), FakeClocks()
    scheduler = make_scheduler(invoker, clocks)
    scheduler.start()
    scheduler.stop(timeout_s=5)
    assert invoker.calls == []
