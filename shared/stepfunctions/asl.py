"""Builders for Amazon States Language: every state machine the catalog declares is built
from these, never written as a dict by hand.

Lambda ARNs are ``${fn:<function name>}`` placeholders (CDK turns them into definition
substitutions, the local runtime into moto's ARNs). Only what moto's interpreter runs
correctly is offered (docs/adr/0029-workflow-interpreter-infrastructure.md): JSONPath, no
JSONata, no workflow variables, no nested ``states:startExecution``, and no paths with array
indexes or filters (``path`` refuses them).

A state is a plain dict (ASL); a machine is ``machine(start, states)``. ``chain`` wires
``Next``/``End`` through a sequence, so a definition reads in execution order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

State = dict[str, Any]
States = dict[str, State]

# Error names Step Functions itself raises.
ALL_ERRORS: Final = "States.ALL"
# A Distributed Map run had more failed child executions than it tolerates (none by default).
EXCEEDED_TOLERATED_FAILURES: Final = "States.ExceedToleratedFailureThreshold"
TASK_FAILED: Final = "States.TaskFailed"
TIMEOUT: Final = "States.Timeout"
HEARTBEAT_TIMEOUT: Final = "States.HeartbeatTimeout"

# The Lambda integration for tasks that hand Step Functions a token to answer later.
LAMBDA_WAIT_FOR_TOKEN: Final = "arn:aws:states:::lambda:invoke.waitForTaskToken"  # noqa: S105 - an ARN, not a secret
# Distributed Map's S3 item reader (a JSON array in one object).
S3_GET_OBJECT: Final = "arn:aws:states:::s3:getObject"
TASK_TOKEN: Final = "$$.Task.Token"  # noqa: S105 - a path, not a secret
MAP_ITEM_VALUE: Final = "$$.Map.Item.Value"
EXECUTION_NAME: Final = "$$.Execution.Name"


class _Keep:
    """``ResultPath`` left out: the task's result replaces the state (ASL's default)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()
# ``ResultPath: null``: the result is dropped and the state's input passes on unchanged.
DISCARD: Final = None

_BAD_PATH = re.compile(r"\[|\?|&&|\|\|")
_TERMINAL = frozenset({"Succeed", "Fail", "Choice"})


def fn(name: str) -> str:
    """The placeholder for catalog function ``name``'s ARN."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ValueError(f"not a catalog function name: {name!r}")
    return "${fn:" + name + "}"


def path(expression: str) -> str:
    """A JSONPath (``$.a.b``, ``$$.Task.Token``), refusing what moto evaluates differently
    from AWS (array indexes yield a list, filters with ``&&``/``||`` break)."""
    if not expression.startswith("$") or _BAD_PATH.search(expression):
        raise ValueError(f"unsupported path {expression!r}: plain field paths only")
    return expression


def parameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """A ``Parameters``/``ItemSelector``/``Payload`` template: keys ending in ``.$`` take a
    path, which is checked; nested templates are checked too."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key.endswith(".$"):
            if not isinstance(value, str):
                raise TypeError(f"{key}: a path must be a string")
            out[key] = path(value)
        elif isinstance(value, Mapping):
            out[key] = parameters(value)
        else:
            out[key] = value
    return out


def pass_through(*fields: str) -> dict[str, str]:
    """``{"run_id.$": "$.run_id", ...}``: copy these fields of the input."""
    return {f"{name}.$": path(f"$.{name}") for name in fields}


# --- Error handling ----------------------------------------------------------------------


def retry(errors: Iterable[str], *, interval_s: int, max_attempts: int, backoff_rate: float) -> dict[str, Any]:
    # BackoffRate is written as a float: statelint's FLOAT check refuses an integer 2.
    return {"ErrorEquals": list(errors), "IntervalSeconds": interval_s, "MaxAttempts": max_attempts,
            "BackoffRate": float(backoff_rate)}


def catch(errors: Iterable[str], next_state: str, *, result_path: str | _Keep | None = KEEP) -> dict[str, Any]:
    rule: dict[str, Any] = {"ErrorEquals": list(errors)}
    _set_result_path(rule, result_path)
    rule["Next"] = next_state
    return rule


def _set_result_path(state: dict[str, Any], result_path: str | _Keep | None) -> None:
    if result_path is None:
        state["ResultPath"] = None
    elif isinstance(result_path, str):
        state["ResultPath"] = path(result_path)


# --- States --------------------------------------------------------------------------------


def _task_fields(state: State, *, result_path: str | _Keep | None, retry_policy: Sequence[Mapping[str, Any]],
                 catch_rules: Sequence[Mapping[str, Any]], timeout_s: int | None,
                 heartbeat_s: int | None, comment: str | None, timeout_path: str | None = None) -> State:
    if comment:
        state = {"Comment": comment, **state}
    _set_result_path(state, result_path)
    if timeout_s is not None and timeout_path is not None:
        raise ValueError("give TimeoutSeconds or TimeoutSecondsPath, not both")
    if timeout_s is not None:
        state["TimeoutSeconds"] = timeout_s
    if timeout_path is not None:
        state["TimeoutSecondsPath"] = path(timeout_path)
    if heartbeat_s is not None:
        state["HeartbeatSeconds"] = heartbeat_s
    if retry_policy:
        state["Retry"] = [dict(rule) for rule in retry_policy]
    if catch_rules:
        state["Catch"] = [dict(rule) for rule in catch_rules]
    return state


def lambda_task(function: str, *, payload: Mapping[str, Any] | None = None,
                result_path: str | _Keep | None = KEEP, retry_policy: Sequence[Mapping[str, Any]] = (),
                catch_rules: Sequence[Mapping[str, Any]] = (), timeout_s: int | None = None,
                comment: str | None = None) -> State:
    """A Task calling catalog function ``function`` directly (its ARN as the resource): the
    event is the state's input (or ``payload``), the result is the handler's return value."""
    state: State = {"Type": "Task", "Resource": fn(function)}
    if payload is not None:
        state["Parameters"] = parameters(payload)
    return _task_fields(state, result_path=result_path, retry_policy=retry_policy, catch_rules=catch_rules,
                        timeout_s=timeout_s, heartbeat_s=None, comment=comment)


def wait_for_task_token(function: str, *, payload: Mapping[str, Any], token_field: str = "task_token",  # noqa: S107
                        result_path: str | _Keep | None = KEEP, retry_policy: Sequence[Mapping[str, Any]] = (),
                        catch_rules: Sequence[Mapping[str, Any]] = (), timeout_s: int | None = None,
                        timeout_path: str | None = None, heartbeat_s: int | None = None,
                        comment: str | None = None) -> State:
    """A Task that invokes ``function`` with the task token in ``payload[token_field]`` and
    then waits until someone answers the token (SendTaskSuccess/Failure). Standard machines only.
    It fails ``States.Timeout`` after ``timeout_s``, or the seconds the state holds at
    ``timeout_path`` (a positive integer)."""
    body = {**payload, f"{token_field}.$": TASK_TOKEN}
    state: State = {"Type": "Task", "Resource": LAMBDA_WAIT_FOR_TOKEN,
                    "Parameters": {"FunctionName": fn(function), "Payload": parameters(body)}}
    return _task_fields(state, result_path=result_path, retry_policy=retry_policy, catch_rules=catch_rules,
                        timeout_s=timeout_s, heartbeat_s=heartbeat_s, comment=comment, timeout_path=timeout_path)


def when_boolean(variable: str, value: bool, next_state: str) -> dict[str, Any]:
    return {"Variable": path(variable), "BooleanEquals": value, "Next": next_state}


def when_string(variable: str, value: str, next_state: str) -> dict[str, Any]:
    return {"Variable": path(variable), "StringEquals": value, "Next": next_state}


def choice(*rules: Mapping[str, Any], default: str | None = None, comment: str | None = None) -> State:
    if not rules:
        raise ValueError("a Choice state needs at least one rule")
    state: State = {"Type": "Choice", "Choices": [dict(rule) for rule in rules]}
    if default is not None:
        state["Default"] = default
    if comment:
        state = {"Comment": comment, **state}
    return state


def pass_state(*, result: Any = None, result_path: str | _Keep | None = KEEP, comment: str | None = None) -> State:
    state: State = {"Type": "Pass"}
    if comment:
        state["Comment"] = comment
    if result is not None:
        state["Result"] = result
    _set_result_path(state, result_path)
    return state


def succeed() -> State:
    return {"Type": "Succeed"}


def fail(error: str, cause: str | None = None) -> State:
    state: State = {"Type": "Fail", "Error": error}
    if cause:
        state["Cause"] = cause
    return state


def map_state(iterator: Mapping[str, Any], *, items_path: str, max_concurrency: int | None = None,
              item_parameters: Mapping[str, Any] | None = None, result_path: str | _Keep | None = KEEP,
              retry_policy: Sequence[Mapping[str, Any]] = (), catch_rules: Sequence[Mapping[str, Any]] = (),
              comment: str | None = None) -> State:
    """An inline Map: ``iterator`` (a ``machine(...)``) runs once per item of ``items_path``,
    at most ``max_concurrency`` at a time (0 or None: no limit)."""
    state: State = {"Type": "Map", "ItemsPath": path(items_path)}
    if max_concurrency is not None:
        state["MaxConcurrency"] = max_concurrency
    if item_parameters is not None:
        # "Parameters" is the name moto (and older ASL) reads for an inline Map's item selector.
        state["Parameters"] = parameters(item_parameters)
    state["Iterator"] = dict(iterator)
    return _task_fields(state, result_path=result_path, retry_policy=retry_policy, catch_rules=catch_rules,
                        timeout_s=None, heartbeat_s=None, comment=comment)


def s3_json_items(*, bucket_path: str, key_path: str) -> dict[str, Any]:
    """A Distributed Map item reader: the JSON array in one S3 object named by the state."""
    return {"Resource": S3_GET_OBJECT, "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": path(bucket_path), "Key.$": path(key_path)}}


def distributed_map(processor: Mapping[str, Any], *, item_reader: Mapping[str, Any],
                    max_concurrency: int | None = None, max_concurrency_path: str | None = None,
                    item_selector: Mapping[str, Any] | None = None,
                    child_type: str = "STANDARD", tolerated_failure_percentage: int | None = None,
                    result_path: str | _Keep | None = KEEP, retry_policy: Sequence[Mapping[str, Any]] = (),
                    catch_rules: Sequence[Mapping[str, Any]] = (), comment: str | None = None) -> State:
    """A Distributed Map: each item runs ``processor`` as a child execution of this machine
    (its role needs ``states:StartExecution`` on itself: the catalog's ``CHILD_EXECUTIONS``).
    At most ``max_concurrency`` children at once, or the number at ``max_concurrency_path``."""
    if child_type not in ("STANDARD", "EXPRESS"):
        raise ValueError(f"child execution type must be STANDARD or EXPRESS, got {child_type!r}")
    if max_concurrency is not None and max_concurrency_path is not None:
        raise ValueError("give MaxConcurrency or MaxConcurrencyPath, not both")
    state: State = {"Type": "Map", "ItemReader": dict(item_reader)}
    if item_selector is not None:
        state["ItemSelector"] = parameters(item_selector)
    if max_concurrency is not None:
        state["MaxConcurrency"] = max_concurrency
    if max_concurrency_path is not None:
        state["MaxConcurrencyPath"] = path(max_concurrency_path)
    if tolerated_failure_percentage is not None:
        state["ToleratedFailurePercentage"] = tolerated_failure_percentage
    state["ItemProcessor"] = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": child_type},
                              **dict(processor)}
    return _task_fields(state, result_path=result_path, retry_policy=retry_policy, catch_rules=catch_rules,
                        timeout_s=None, heartbeat_s=None, comment=comment)


# --- Machines ----------------------------------------------------------------------------


def chain(*steps: tuple[str, State]) -> States:
    """Name the states and wire them in order: each state without its own ``Next``/``End``
    goes to the following one, and the last ends the machine (Choice, Succeed and Fail
    states decide their own way on)."""
    states: States = {}
    for index, (name, state) in enumerate(steps):
        if name in states:
            raise ValueError(f"duplicate state name {name!r}")
        wired = dict(state)
        if wired["Type"] not in _TERMINAL and "Next" not in wired and not wired.get("End"):
            if index + 1 < len(steps):
                wired["Next"] = steps[index + 1][0]
            else:
                wired["End"] = True
        states[name] = wired
    return states


def goto(state: State, next_state: str) -> State:
    """``state`` going to ``next_state`` (for loops back and jumps ``chain`` cannot infer)."""
    return {**state, "Next": next_state}


def end(state: State) -> State:
    return {**state, "End": True}


def machine(states: Mapping[str, State], *, start: str | None = None, comment: str | None = None) -> dict[str, Any]:
    """A machine (or a Map's iterator): ``start`` defaults to the first state."""
    if not states:
        raise ValueError("a machine needs at least one state")
    first = start if start is not None else next(iter(states))
    if first not in states:
        raise ValueError(f"StartAt {first!r} is not a state")
    definition: dict[str, Any] = {}
    if comment:
        definition["Comment"] = comment
    definition["StartAt"] = first
    definition["States"] = dict(states)
    return definition


def referenced_functions(definition: Mapping[str, Any]) -> set[str]:
    """Catalog functions named by ``${fn:...}`` placeholders anywhere in ``definition``."""
    import json

    return set(re.findall(r"\$\{fn:([^}]+)\}", json.dumps(definition)))
