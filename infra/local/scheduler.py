"""The local stand-in for EventBridge schedules: fires every catalog function whose trigger
is a ``Schedule`` through the in-process invoker, with the event EventBridge sends.

Expressions follow EventBridge rules (UTC):

- ``rate(N unit)``: unit is ``minute``/``hour``/``day`` when N is 1, the plural otherwise.
  The first firing is one period after start, as EventBridge fires one period after the
  rule is created.
- ``cron(minutes hours day-of-month month day-of-week year)``: numbers, ``*``, lists,
  ranges and ``/`` steps in every field; month and day-of-week also take names
  (``JAN``, ``MON``; day-of-week 1 is Sunday); exactly one of day-of-month and day-of-week
  is ``?``. ``L``, ``W`` and ``#`` are refused rather than silently misread.

No cron library is installed in the project's environment, and the grammar is small
enough that a dependency would cost more than it saves.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.catalog import FUNCTIONS, Function, Schedule
from infra.local.invoker import LocalInvoker

logger = logging.getLogger(__name__)

# The account and region the local runtime provisions into (moto's default account).
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

# --- Expressions ------------------------------------------------------------------------

_RATE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_MONTHS = {name: i + 1 for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_DAYS = {name: i + 1 for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


@dataclass(frozen=True)
class RateExpression:
    period: timedelta

    def next_after(self, after: datetime) -> datetime:
        return after + self.period


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_FIELDS = (
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 1, 7, _DAYS),
    _Field("year", 1970, 2199),
)


@dataclass(frozen=True)
class CronExpression:
    minutes: frozenset[int]
    hours: frozenset[int]
    # None: the field is "?" (the other day field decides).
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    # EventBridge numbering: 1 = Sunday ... 7 = Saturday.
    days_of_week: frozenset[int] | None
    years: frozenset[int]

    def _day_matches(self, day: datetime) -> bool:
        if self.days_of_month is not None:
            return day.day in self.days_of_month
        assert self.days_of_week is not None
        return (day.weekday() + 1) % 7 + 1 in self.days_of_week

    def next_after(self, after: datetime) -> datetime | None:
        """The first matching minute strictly after ``after`` (UTC), or None if the
        expression never fires again (e.g. every year listed is past)."""
        t = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        last_year = max(self.years)
        # Each step jumps to the start of the next candidate year, month, day, hour or
        # minute, so the loop runs at most a few hundred thousand cheap steps even for an
        # expression that never matches (``cron(0 0 31 2 ? *)``) before giving up.
        while t.year <= last_year:
            if t.year not in self.years:
                t = datetime(t.year + 1, 1, 1, tzinfo=UTC)
            elif t.month not in self.months:
                t = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        return None


ScheduleExpression = RateExpression | CronExpression


def _value(token: str, field: _Field, expression: str) -> int:
    if field.names and token.upper() in field.names:
        return field.names[token.upper()]
    if not token.isdigit():
        if any(c in token.upper() for c in "LW#"):
            # L (last), W (nearest weekday) and # (nth weekday) change what a day means;
            # refusing them beats firing on the wrong day.
            raise ValueError(f"{field.name} {token!r} uses L, W or #, which the local scheduler does not "
                             f"support, in schedule expression {expression!r}")
        raise ValueError(f"invalid {field.name} value {token!r} in schedule expression {expression!r}")
    value = int(token)
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.name} value {value} is outside {field.low}-{field.high} "
                         f"in schedule expression {expression!r}")
    return value


def _parse_field(text: str, field: _Field, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"invalid step {step_text!r} in {field.name} of schedule expression "
                                 f"{expression!r}")
            step = int(step_text)
        if base == "*":
            start, end = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, field, expression), _value(last, field, expression)
            if start > end:
                raise ValueError(f"range {base!r} in {field.name} runs backwards in schedule expression "
                                 f"{expression!r}")
        else:
            start = _value(base, field, expression)
            # "5/15" means from 5 to the end of the field, every 15 (as in EventBridge).
            end = field.high if slash else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_schedule(expression: str) -> ScheduleExpression:
    """Parse an EventBridge ``rate(...)`` or ``cron(...)`` expression; ValueError says why
    an expression is refused."""
    text = expression.strip()
    rate = _RATE.match(text)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        singular = unit[:-1] if unit.endswith("s") else unit
        if singular not in _RATE_UNITS:
            raise ValueError(f"unknown rate unit {unit!r} in {expression!r}: "
                             "use minute(s), hour(s) or day(s)")
        if count < 1:
            raise ValueError(f"rate value must be a positive integer in {expression!r}")
        # EventBridge refuses "rate(1 minutes)" and "rate(5 minute)"; so do we, so a schedule
        # that works locally deploys.
        if (count == 1) != (unit == singular):
            expected = singular if count == 1 else singular + "s"
            raise ValueError(f"rate {expression!r} must use the unit {expected!r} for the value {count}")
        return RateExpression(count * _RATE_UNITS[singular])
    cron = _CRON.match(text)
    if cron:
        parts = cron.group(1).split()
        if len(parts) != 6:
            raise ValueError(f"cron expression {expression!r} needs 6 fields (minutes hours day-of-month "
                             f"month day-of-week year), got {len(parts)}")
        dom_text, dow_text = parts[2], parts[4]
        if (dom_text == "?") == (dow_text == "?"):
            raise ValueError(f"cron expression {expression!r} must use '?' in exactly one of day-of-month "
                             "and day-of-week")
        for i, part in enumerate(parts):
            if part == "?" and i not in (2, 4):
                raise ValueError(f"'?' is only allowed in day-of-month or day-of-week, not in "
                                 f"{_FIELDS[i].name} of {expression!r}")
        fields = [None if part == "?" else _parse_field(part, field, expression)
                  for part, field in zip(parts, _FIELDS, strict=True)]
        minutes, hours, days_of_month, months, days_of_week, years = fields
        assert minutes is not None and hours is not None and months is not None and years is not None
        return CronExpression(minutes, hours, days_of_month, months, days_of_week, years)
    raise ValueError(f"invalid schedule expression {expression!r}: expected rate(N unit) or "
                     "cron(minutes hours day-of-month month day-of-week year)")


def scheduled_event(name: str, at: datetime) -> dict[str, Any]:
    """The event EventBridge sends a scheduled target (events/eventbridge_schedule.json)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/stratus-{name}"],
        "detail": {},
    }


# --- Scheduler --------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Job:
    name: str
    expression: ScheduleExpression
    # Due time on the monotonic clock (None: never fires again), and the wall-clock time
    # it stands for (the event's "time" and the anchor of the next cron match).
    due: float | None
    due_wall: datetime | None


class LocalScheduler:
    """Fires the catalog's schedules on a daemon thread.

    A failed firing is logged with its stack and not retried: EventBridge's retry policy
    would redeliver, but locally a failing maintenance function is a bug to see in the
    log, and the next scheduled firing happens as usual. Firings missed while a previous
    one ran (or the machine slept) are skipped, not queued up.
    """

    def __init__(self, invoker: LocalInvoker, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = _utc_now, functions: Iterable[Function] = FUNCTIONS) -> None:
        self._invoker = invoker
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._jobs: dict[str, _Job] = {}
        for fn in functions:
            if isinstance(fn.trigger, Schedule):
                # A bad expression fails the runtime's start, like a failed deploy would.
                expression = parse_schedule(fn.trigger.expression)
                self._jobs[fn.name] = _Job(fn.name, expression, None, None)
        self._plan_all()

    @property
    def names(self) -> list[str]:
        return sorted(self._jobs)

    def _plan_all(self) -> None:
        mono, wall = self._clock(), self._now()
        for job in self._jobs.values():
            self._plan(job, mono, wall, wall)

    def _plan(self, job: _Job, mono: float, wall: datetime, after: datetime) -> None:
        """Set the job's next due time strictly after ``after`` (wall clock), expressed on
        the monotonic clock read at the same moment as ``wall``."""
        nxt = job.expression.next_after(after)
        if isinstance(job.expression, RateExpression):
            # Skip periods already missed instead of firing them in a burst.
            while nxt is not None and nxt <= wall:
                nxt = job.expression.next_after(nxt)
        job.due_wall = nxt
        job.due = None if nxt is None else mono + (nxt - wall).total_seconds()
        if nxt is None:
            logger.warning("schedule %s (%s) never fires again", job.name, job.expression)

    def next_run(self, name: str) -> datetime | None:
        """When ``name`` fires next (UTC), or None if it never fires again."""
        with self._lock:
            return self._job(name).due_wall

    def _job(self, name: str) -> _Job:
        try:
            return self._jobs[name]
        except KeyError:
            raise LookupError(f"no scheduled function named {name!r} in the catalog") from None

    def fire(self, name: str) -> Any:
        """Fire ``name`` now with a Scheduled Event and return its handler's result; raises
        the invoker's FunctionError if the handler fails. Does not move the schedule."""
        self._job(name)
        return self._invoker.invoke(name, scheduled_event(name, self._now()))

    def _fire_logged(self, name: str, at: datetime) -> None:
        try:
            self._invoker.invoke(name, scheduled_event(name, at))
        except Exception:
            logger.exception("scheduled function %s failed (not retried locally)", name)

    def run_pending(self) -> float | None:
        """Fire every job that is due; returns seconds until the next due job (None: none
        left). The background thread calls this; tests may call it with a fake clock."""
        due: list[tuple[str, datetime]] = []
        with self._lock:
            mono, wall = self._clock(), self._now()
            for job in self._jobs.values():
                if job.due is None or job.due_wall is None:
                    continue
                # Due on either clock: the monotonic one survives wall-clock jumps, the wall
                # one keeps cron times right after the machine slept (monotonic time stops).
                if job.due <= mono or job.due_wall <= wall:
                    due.append((job.name, job.due_wall))
                    # A rate is anchored to this firing's due time so it does not drift by
                    # however long firings take; a cron looks for its next match after now.
                    anchor = job.due_wall if isinstance(job.expression, RateExpression) else max(
                        job.due_wall, wall)
                    self._plan(job, mono, wall, anchor)
            pending = [job.due for job in self._jobs.values() if job.due is not None]
            wait = max(0.0, min(pending) - mono) if pending else None
        for name, at in due:
            self._fire_logged(name, at)
        return wait

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.run_pending()
            # Wake at least once a minute: the monotonic clock stops while the machine
            # sleeps, so a long wait could overshoot a wall-clock time.
            self._stop.wait(60.0 if wait is None else min(wait, 60.0))

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        with self._lock:
            self._plan_all()
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
