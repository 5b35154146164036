"""The concurrency and connection budget (docs/adr/0047-concurrency-budget-and-side-doors.md).

Every Lambda container that touches the database pins one connection (per-transaction
``set_config`` under row-level security pins the RDS Proxy session), so the database's
connection budget is the number of concurrent containers. Each function belongs to a class
derived from its catalog trigger (a function added later needs no edit here); each class has
a per-stage budget: the reserved concurrency of each of its functions, or, for the HTTP API
(too many functions to reserve each), one allowance for the whole class. The synth refuses a
catalog and a stage whose budget does not fit:

    sum over functions(reserved * connections per container) + HTTP allowance
        ≤ proxy max connections (MaxConnectionsPercent * max_connections)
        ≤ max_connections of the database at its maximum capacity

Nothing here names a function.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from shared.catalog import (
    Authorizer,
    DefaultRoute,
    Deploy,
    Function,
    FunctionUrl,
    Http,
    Invoked,
    Queue,
    Schedule,
    StepFunctionsTask,
)

FunctionClass = Literal["streaming", "http", "ingestion", "embedding", "workflow", "steps", "scheduled",
                        "invoked", "deploy"]
FUNCTION_CLASSES: tuple[FunctionClass, ...] = ("streaming", "http", "ingestion", "embedding", "workflow", "steps",
                                               "scheduled", "invoked", "deploy")
# API Gateway's HTTP API and CloudFront give up after 30 s: an HTTP function answers before.
HTTP_MAX_TIMEOUT_S = 28
# Lambda keeps this much of an account's concurrency unreserved, whatever the functions ask.
LAMBDA_UNRESERVED_MINIMUM = 100
# Aurora PostgreSQL: max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000); Serverless v2
# sizes the memory from the maximum capacity (about 2 GiB per ACU) and caps the value at 2000
# when the minimum capacity is 0.5 ACU.
_BYTES_PER_CONNECTION = 9_531_392
_BYTES_PER_ACU = 2 * 2**30


def function_class(fn: Function) -> FunctionClass:
    """The class of a catalog entry, from its trigger (and, for Step Functions tasks, what they run)."""
    trigger = fn.trigger
    if isinstance(trigger, FunctionUrl):
        return "streaming"
    if isinstance(trigger, (Http, DefaultRoute, Authorizer)):
        return "http"
    if isinstance(trigger, Queue):
        return "ingestion"
    if isinstance(trigger, StepFunctionsTask):
        if fn.domain == "workflows":
            return "workflow"
        return "embedding" if "embed" in fn.layers else "steps"
    if isinstance(trigger, Schedule):
        return "scheduled"
    if isinstance(trigger, Invoked):
        return "invoked"
    if isinstance(trigger, Deploy):
        return "deploy"
    raise TypeError(f"{fn.name}: no function class for trigger {trigger!r}")  # pragma: no cover


def uses_database(fn: Function) -> bool:
    return any(a.resource in ("database", "database_admin") for a in fn.access)


def connections_per_container(fn: Function) -> int:
    """One pinned connection per container that reaches the database, none otherwise."""
    return 1 if uses_database(fn) else 0


def aurora_max_connections(min_acu: float, max_acu: float) -> int:
    """max_connections of an Aurora PostgreSQL Serverless v2 instance (AWS's documented formula)."""
    value = min(int(max_acu * _BYTES_PER_ACU // _BYTES_PER_CONNECTION), 5000)
    return min(value, 2000) if min_acu <= 0.5 else value


# Per-function reserved concurrency of each class (None: not reserved); the HTTP class is
# bounded as a whole by ``http_allowance``. Defaults for a dev stage; a stage overrides any of
# them with the ``concurrency`` context (e.g. {"streaming": 100, "http_allowance": 400}).
DEFAULT_RESERVED: dict[FunctionClass, int | None] = {
    "streaming": 25,     # chat turns and workflow streams: long, one connection each
    "http": None,        # ~80 functions and more to come: one class allowance instead
    "ingestion": 10,     # the queue's MaximumConcurrency is the same figure
    "embedding": 10,
    "workflow": 15,
    "steps": 5,
    "scheduled": 2,      # schedules fire rarely; two keeps a retry beside a late run
    "invoked": None,     # outside the VPC, no database (the budget refuses one that has it)
    "deploy": 1,         # migrations: one at a time, straight to the cluster
}
DEFAULT_HTTP_ALLOWANCE = 250


@dataclass(frozen=True)
class Budget:
    """A stage's concurrency budget and its database's connections."""

    reserved: Mapping[FunctionClass, int | None] = field(default_factory=lambda: dict(DEFAULT_RESERVED))
    # Concurrent HTTP API containers (authorizer included) the connections are budgeted for.
    http_allowance: int = DEFAULT_HTTP_ALLOWANCE
    # max_connections of the database (the writer: every connection goes to it).
    database_max_connections: int = 901
    # The share of max_connections the proxy may open; the rest is for migrations and operators.
    proxy_max_connections_percent: int = 80
    # The account's Lambda concurrency limit (1000 by default; ask for more before raising budgets).
    account_concurrency: int = 1000

    @property
    def proxy_max_connections(self) -> int:
        return math.floor(self.database_max_connections * self.proxy_max_connections_percent / 100)

    def reserved_for(self, fn: Function) -> int | None:
        return self.reserved.get(function_class(fn))

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, object], *, database_max_connections: int,
                       proxy_max_connections_percent: int, account_concurrency: int) -> Budget:
        reserved: dict[FunctionClass, int | None] = dict(DEFAULT_RESERVED)
        http_allowance = DEFAULT_HTTP_ALLOWANCE
        for key, value in overrides.items():
            if key == "http_allowance":
                http_allowance = int(str(value))
            elif key in FUNCTION_CLASSES:
                reserved[key] = None if value is None else int(str(value))
            else:
                raise ValueError(f"concurrency: unknown class {key!r}; known: {[*FUNCTION_CLASSES, 'http_allowance']}")
        if reserved["http"] is not None:
            raise ValueError("concurrency: the http class is bounded by http_allowance, not reserved per function")
        return cls(reserved=reserved, http_allowance=http_allowance, database_max_connections=database_max_connections,
                   proxy_max_connections_percent=proxy_max_connections_percent,
                   account_concurrency=account_concurrency)


@dataclass(frozen=True)
class Usage:
    """What a catalog takes of a budget."""

    proxy_connections: int
    direct_connections: int
    reserved_concurrency: int
    by_class: dict[str, int]


def budget_usage(functions: Iterable[Function], budget: Budget) -> Usage:
    by_class: dict[str, int] = {}
    proxy = direct = reserved_total = 0
    for fn in functions:
        reserved = budget.reserved_for(fn)
        if reserved is not None:
            reserved_total += reserved
        if not uses_database(fn) or function_class(fn) == "http":
            continue
        connections = (reserved or 0) * connections_per_container(fn)
        by_class[function_class(fn)] = by_class.get(function_class(fn), 0) + connections
        # Migrations log in as the owner straight to the cluster (infra/functions.py), not through the proxy.
        if any(a.resource == "database_admin" for a in fn.access):
            direct += connections
        else:
            proxy += connections
    by_class["http"] = budget.http_allowance
    return Usage(proxy_connections=proxy + budget.http_allowance, direct_connections=direct,
                 reserved_concurrency=reserved_total, by_class=by_class)


class BudgetExceeded(ValueError):
    """The stage's concurrency budget does not fit its database (or its account)."""


def check_budget(functions: Iterable[Function], budget: Budget) -> Usage:
    """Refuse a budget the database or the account cannot honour; the usage when it fits."""
    functions = list(functions)
    problems: list[str] = []
    for fn in functions:
        cls = function_class(fn)
        if uses_database(fn) and cls != "http" and budget.reserved_for(fn) is None:
            problems.append(f"{fn.name} ({cls}) reaches the database without reserved concurrency")
        reserved = budget.reserved_for(fn)
        if reserved is not None and reserved < 1:
            problems.append(f"{fn.name} ({cls}): reserved concurrency {reserved} would disable it")
    usage = budget_usage(functions, budget)
    if budget.proxy_max_connections > budget.database_max_connections:
        problems.append(f"proxy max connections {budget.proxy_max_connections} exceed the database's "
                        f"{budget.database_max_connections}")
    if usage.proxy_connections > budget.proxy_max_connections:
        problems.append(f"containers through the proxy may hold {usage.proxy_connections} connections "
                        f"({usage.by_class}), over the proxy's {budget.proxy_max_connections} "
                        f"({budget.proxy_max_connections_percent}% of {budget.database_max_connections})")
    if usage.proxy_connections + usage.direct_connections > budget.database_max_connections:
        problems.append(f"{usage.proxy_connections + usage.direct_connections} connections exceed the "
                        f"database's max_connections {budget.database_max_connections}")
    if usage.reserved_concurrency + budget.http_allowance > budget.account_concurrency - LAMBDA_UNRESERVED_MINIMUM:
        problems.append(f"reserved concurrency {usage.reserved_concurrency} plus the HTTP allowance "
                        f"{budget.http_allowance} exceed the account's {budget.account_concurrency} less the "
                        f"{LAMBDA_UNRESERVED_MINIMUM} Lambda keeps unreserved")
    if problems:
        raise BudgetExceeded("concurrency budget exceeded (docs/adr/0047-concurrency-budget-and-side-doors.md): "
                             + "; ".join(problems))
    return usage


def validate_http_timeouts(functions: Iterable[Function]) -> None:
    """An API-Gateway-integrated function answers within 28 s: the HTTP API and CloudFront give up at 30."""
    slow = sorted(f"{fn.name} ({fn.timeout_s} s)" for fn in functions
                  if isinstance(fn.trigger, (Http, DefaultRoute, Authorizer)) and fn.timeout_s > HTTP_MAX_TIMEOUT_S)
    if slow:
        raise ValueError(f"HTTP API functions must time out within {HTTP_MAX_TIMEOUT_S} s (the API gives up at "
                         f"30 s): {', '.join(slow)}; move slow work off the request path")
