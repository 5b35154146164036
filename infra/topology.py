"""What the catalog implies for queues and environment variables, without CDK: shared by the
CDK app (infra/) and the local runtime (infra/local/), which must agree on both and must not
import aws_cdk."""

from __future__ import annotations

import re
from collections.abc import Iterable

from functions import catalog
from functions.catalog import Function, FunctionUrl, Http, Queue, QueueSpec
from shared.catalog import prefix_glob, under_prefix
from shared.config import env_variable

# SQS's limit on a message's visibility timeout.
MAX_VISIBILITY_TIMEOUT_S = 12 * 60 * 60
# AWS's advice for a queue feeding Lambda: at least six times the function's timeout (plus
# the batching window), so a message is not redelivered while retries of a throttled
# invocation are still pending.
VISIBILITY_TIMEOUT_FACTOR = 6
# Lambda's limits for an SQS event source mapping on a standard queue.
MAX_BATCH_SIZE = 10_000
MAX_BATCH_SIZE_WITHOUT_WINDOW = 10
MAX_BATCHING_WINDOW_S = 300
# The dead-letter queues keep messages this long (SQS's maximum retention).
DLQ_RETENTION_DAYS = 14


def construct_id(name: str) -> str:
    """``api-keys-create`` → ``ApiKeysCreate``: the construct (and logical id) prefix."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def env_name(name: str, suffix: str) -> str:
    """``admin-token``, ``SECRET_ARN`` → ``ADMIN_TOKEN_SECRET_ARN`` (a shared.config field; the
    names come from shared.config, which checks them at cold start)."""
    return env_variable(name, suffix)


def consumers(spec: QueueSpec, functions: Iterable[Function] | None = None) -> list[Function]:
    return [fn for fn in (catalog.FUNCTIONS if functions is None else functions)
            if isinstance(fn.trigger, Queue) and fn.trigger.queue == spec.name]


def consumer(spec: QueueSpec, functions: Iterable[Function] | None = None) -> Function:
    """The one function a queue feeds (two event source mappings on one queue would compete
    for its messages)."""
    found = consumers(spec, functions)
    if len(found) != 1:
        names = [fn.name for fn in found]
        raise ValueError(f"queue {spec.name!r} needs exactly one consuming function (a Queue trigger), found {names}")
    return found[0]


def visibility_timeout_s(spec: QueueSpec, functions: Iterable[Function] | None = None) -> int:
    """The queue's visibility timeout: the catalog's value, else six times the consumer's
    timeout plus its batching window, capped at SQS's 12 hours. Never below the consumer's
    timeout (Lambda refuses such an event source mapping)."""
    fn = consumer(spec, functions)
    assert isinstance(fn.trigger, Queue)
    if spec.visibility_timeout_s is None:
        value = VISIBILITY_TIMEOUT_FACTOR * fn.timeout_s + fn.trigger.max_batching_window_s
        return min(value, MAX_VISIBILITY_TIMEOUT_S)
    if not fn.timeout_s <= spec.visibility_timeout_s <= MAX_VISIBILITY_TIMEOUT_S:
        raise ValueError(f"queue {spec.name!r}: visibility timeout {spec.visibility_timeout_s} s must be between "
                         f"its consumer {fn.name}'s timeout ({fn.timeout_s} s) and {MAX_VISIBILITY_TIMEOUT_S} s")
    return spec.visibility_timeout_s


def validate_queue_trigger(fn: Function) -> QueueSpec:
    """The queue a ``Queue`` trigger names, after checking Lambda's batching limits."""
    trigger = fn.trigger
    assert isinstance(trigger, Queue)
    try:
        spec = catalog.queue_by_name(trigger.queue)
    except LookupError:
        raise ValueError(f"{fn.name}: unknown queue {trigger.queue!r}; known: "
                         f"{sorted(q.name for q in catalog.QUEUES)}") from None
    if not 0 <= trigger.max_batching_window_s <= MAX_BATCHING_WINDOW_S:
        raise ValueError(f"{fn.name}: max_batching_window_s must be between 0 and {MAX_BATCHING_WINDOW_S}")
    limit = MAX_BATCH_SIZE if trigger.max_batching_window_s else MAX_BATCH_SIZE_WITHOUT_WINDOW
    if not 1 <= trigger.batch_size <= limit:
        raise ValueError(f"{fn.name}: batch_size must be between 1 and {limit} "
                         f"(above {MAX_BATCH_SIZE_WITHOUT_WINDOW} needs a batching window)")
    return spec


def validate_queues() -> None:
    """Every queue has one consumer, a usable visibility timeout and a positive redrive count;
    every Queue trigger names a declared queue within Lambda's limits."""
    names = [spec.name for spec in catalog.QUEUES]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate queue names in the catalog: {duplicates}")
    for fn in catalog.FUNCTIONS:
        if isinstance(fn.trigger, Queue):
            validate_queue_trigger(fn)
    for spec in catalog.QUEUES:
        visibility_timeout_s(spec)
        if not 1 <= spec.max_receive_count <= 1000:
            raise ValueError(f"queue {spec.name!r}: max_receive_count must be between 1 and 1000")


# --- Streaming functions (function URLs behind the edge) --------------------------------------

# A prefix: literal segments, or whole-segment parameters after the first ("/api/v1/chat",
# "/api/v1/workflow-runs/{run_id}/events").
_PREFIX = re.compile(r"/[A-Za-z0-9._-]+(/([A-Za-z0-9._-]+|\{[A-Za-z_][A-Za-z0-9_]*\}))*")


def stream_path_patterns(trigger: FunctionUrl) -> list[str]:
    """The CloudFront path patterns of a function URL: each prefix itself and everything below it
    (a parameter becomes ``*``)."""
    return [pattern for prefix in trigger.path_prefixes
            for pattern in (prefix_glob(prefix), prefix_glob(prefix) + "/*")]


def _glob_matches(pattern: str, path: str) -> bool:
    """CloudFront's path-pattern match: ``*`` is any run of characters (``/`` included)."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), path) is not None


def validate_streaming(functions: Iterable[Function] | None = None) -> None:
    """Every FunctionUrl trigger owns distinct, well-formed path prefixes; its routes lie under
    them; no HTTP API route does (the edge, matching by path whatever the method, would send it
    to the function URL)."""
    entries = list(catalog.FUNCTIONS if functions is None else functions)
    owners: dict[str, str] = {}
    patterns: dict[str, str] = {}
    routes: set[str] = set()
    for fn in entries:
        trigger = fn.trigger
        if not isinstance(trigger, FunctionUrl):
            continue
        if not trigger.path_prefixes or not trigger.routes:
            raise ValueError(f"{fn.name}: a FunctionUrl trigger needs path prefixes and routes")
        for prefix in trigger.path_prefixes:
            if not _PREFIX.fullmatch(prefix):
                raise ValueError(f"{fn.name}: path prefix {prefix!r} must look like /api/v1/chat or "
                                 "/api/v1/workflow-runs/{run_id}/events (no trailing slash, no wildcard, parameters "
                                 "as whole segments after the first)")
            if prefix in owners:
                raise ValueError(f"path prefix {prefix!r} belongs to both {owners[prefix]} and {fn.name}")
            owners[prefix] = fn.name
        for pattern in stream_path_patterns(trigger):
            patterns[pattern] = fn.name
        for route in trigger.routes:
            if not any(under_prefix(route.path, prefix) for prefix in trigger.path_prefixes):
                raise ValueError(f"{fn.name}: route {route.method} {route.path} is outside its path prefixes "
                                 f"{list(trigger.path_prefixes)}")
            key = f"{route.method.upper()} {route.path}"
            if key in routes:
                raise ValueError(f"duplicate streaming route {key}")
            routes.add(key)
    for prefix in owners:
        if any(under_prefix(other, prefix) or under_prefix(prefix, other) for other in owners if other != prefix):
            raise ValueError(f"path prefix {prefix!r} contains or lies under another prefix")
    for fn in entries:
        if isinstance(fn.trigger, Http):
            # A parameter of the route stands for any one segment: a sample value tests it.
            sample = _PATH_PARAMETER.sub("x", fn.trigger.path)
            for pattern, owner in patterns.items():
                if _glob_matches(pattern, sample):
                    raise ValueError(f"{fn.name}: route {fn.trigger.route_key} lies under {owner}'s streaming "
                                     f"path pattern {pattern!r}: the edge sends it to the function URL")


_PATH_PARAMETER = re.compile(r"\{\w+\}")


# --- Compatible API facades -------------------------------------------------------------------


def validate_facades(functions: Iterable[Function] | None = None,
                     facades: Iterable[catalog.Facade] | None = None) -> None:
    """Each facade owns its prefix (one segment, apart from Stratus's ``/api`` and every other
    facade's); every route under it answers in its dialect and every route in its dialect lies
    under it, HTTP API and streaming routes alike (docs/adr/0042-compatible-api-facades.md)."""
    entries = list(catalog.FUNCTIONS if functions is None else functions)
    declared = list(catalog.FACADES if facades is None else facades)
    by_prefix: dict[str, catalog.Facade] = {}
    for facade in declared:
        if not re.fullmatch(r"/[a-z][a-z0-9-]*", facade.prefix) or facade.prefix in ("/api", "/health"):
            raise ValueError(f"facade {facade.name}: prefix {facade.prefix!r} must be one segment of its own "
                             "(like /openai), not /api or /health")
        if facade.prefix in by_prefix or facade.dialect in {f.dialect for f in by_prefix.values()}:
            raise ValueError(f"facade {facade.name}: its prefix or dialect is another facade's")
        if not under_prefix(facade.base_path, facade.prefix):
            raise ValueError(f"facade {facade.name}: base path {facade.base_path!r} lies outside {facade.prefix!r}")
        by_prefix[facade.prefix] = facade
    routes: list[tuple[str, str, str]] = []
    for fn in entries:
        if isinstance(fn.trigger, Http):
            routes.append((fn.name, fn.trigger.path, fn.trigger.dialect))
        elif isinstance(fn.trigger, FunctionUrl):
            routes += [(fn.name, route.path, route.dialect) for route in fn.trigger.routes]
    for name, path, dialect in routes:
        owner = next((f for prefix, f in by_prefix.items() if under_prefix(path, prefix)), None)
        if owner is not None and dialect != owner.dialect:
            raise ValueError(f"{name}: {path} lies under facade {owner.name} but answers in dialect {dialect!r}; "
                             f"give it dialect {owner.dialect!r}")
        if owner is None and dialect != catalog.DEFAULT_DIALECT:
            raise ValueError(f"{name}: {path} answers in dialect {dialect!r} outside every facade's prefix")
