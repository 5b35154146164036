"""The function catalog: the one manifest naming every function, one module per domain.

The CDK stacks, the local runtime and the OpenAPI document are all generated from it;
nothing lists routes twice. The schema (what an entry is) lives in ``shared.catalog``;
this package holds the entries and the lookups over them.
"""

from __future__ import annotations

from functools import cache

from functions.catalog import (
    agents,
    chat,
    coze,
    coze_bots,
    coze_knowledge,
    dify,
    files,
    knowledge,
    models,
    openai,
    platform,
    tools,
    workflows,
)
from functions.catalog.layers import LAYERS
from shared.catalog import (
    DEFAULT_DIALECT,
    Access,
    Authorizer,
    DefaultRoute,
    Deploy,
    Facade,
    Function,
    FunctionUrl,
    Http,
    Invoked,
    Layer,
    Queue,
    QueueSpec,
    S3Notification,
    Schedule,
    StateMachineSpec,
    StepFunctionsTask,
    StreamRoute,
    Trigger,
)

__all__ = [
    "DEFAULT_DIALECT",
    "FACADES",
    "FUNCTIONS",
    "LAYERS",
    "QUEUES",
    "STATE_MACHINES",
    "Access",
    "Authorizer",
    "DefaultRoute",
    "Deploy",
    "Facade",
    "Function",
    "FunctionUrl",
    "Http",
    "Invoked",
    "Layer",
    "Queue",
    "QueueSpec",
    "S3Notification",
    "Schedule",
    "StateMachineSpec",
    "StepFunctionsTask",
    "StreamRoute",
    "Trigger",
    "by_module",
    "by_name",
    "domains",
    "function_for_module",
    "http_functions",
    "queue_by_name",
    "streaming_functions",
]

_DOMAINS = (platform, models, knowledge, files, agents, chat, workflows, tools, openai, coze, coze_knowledge,
            coze_bots, dify)

FUNCTIONS: tuple[Function, ...] = tuple(fn for domain in _DOMAINS for fn in domain.FUNCTIONS)
QUEUES: tuple[QueueSpec, ...] = tuple(q for domain in _DOMAINS for q in getattr(domain, "QUEUES", ()))
STATE_MACHINES: tuple[StateMachineSpec, ...] = tuple(
    sm for domain in _DOMAINS for sm in getattr(domain, "STATE_MACHINES", ()))
# The compatible APIs (docs/adr/0042-compatible-api-facades.md), each under its own prefix.
FACADES: tuple[Facade, ...] = tuple(f for domain in _DOMAINS for f in getattr(domain, "FACADES", ()))


@cache
def by_name() -> dict[str, Function]:
    return {fn.name: fn for fn in FUNCTIONS}


@cache
def by_module() -> dict[str, Function]:
    return {fn.module: fn for fn in FUNCTIONS}


def queue_by_name(name: str) -> QueueSpec:
    for spec in QUEUES:
        if spec.name == name:
            return spec
    raise LookupError(f"no queue named {name!r} in functions/catalog/")


def http_functions() -> list[Function]:
    return [fn for fn in FUNCTIONS if isinstance(fn.trigger, Http)]


def streaming_functions() -> list[Function]:
    return [fn for fn in FUNCTIONS if isinstance(fn.trigger, FunctionUrl)]


def function_for_module(module: str) -> Function:
    try:
        return by_module()[module]
    except KeyError:
        raise LookupError(f"{module} is not in functions/catalog/") from None


def domains() -> list[str]:
    return sorted({fn.domain for fn in FUNCTIONS} | {sm.domain for sm in STATE_MACHINES}
                  | {q.domain for q in QUEUES})
