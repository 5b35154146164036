"""A human input node's form: what the person is shown while the run is paused, the check of
their answer against the fields (a 422 naming each field), and the answer a timeout gives
(docs/adr/0036-human-input-and-sub-workflows.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.workflows.configs import ACTION_OUTPUT, FormField, HumanInputConfig
from shared.workflows.definition import SOURCE_HANDLE
from shared.workflows.errors import WorkflowAnswerInvalid

_NUMBER_TEXT = re.compile(r"^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def form_view(config: HumanInputConfig, content: str) -> dict[str, Any]:
    """The form as the run shows it (GET the run, the ``workflow.paused`` event): the rendered
    content, the fields and the actions."""
    return {"content": content,
            "fields": [item.model_dump(mode="json") for item in config.fields],
            "actions": [action.model_dump(mode="json") for action in config.actions]}


def default_answer(config: HumanInputConfig) -> tuple[dict[str, Any], str]:
    """The outputs and handle of a pause that timed out under ``on_timeout: default``: each
    field's default (None without one), the first action."""
    outputs: dict[str, Any] = {item.name: item.default for item in config.fields}
    handle = SOURCE_HANDLE
    if config.actions:
        handle = config.actions[0].id
        outputs[ACTION_OUTPUT] = handle
    return outputs, handle


def check_answer(config: HumanInputConfig, answer: Mapping[str, Any] | None,
                 action: str | None) -> tuple[dict[str, Any], str]:
    """The outputs and handle of a person's answer; raises :class:`WorkflowAnswerInvalid`
    naming every field that is wrong (``answer.<name>``, ``action``)."""
    answer = answer or {}
    declared = {item.name: item for item in config.fields}
    errors: list[dict[str, str]] = []
    for name in answer:
        if name not in declared:
            errors.append({"field": f"answer.{name}", "type": "unknown_field",
                           "message": f"the form has no field {name!r}; its fields are "
                                      f"{', '.join(declared) or 'none'}"})
    outputs: dict[str, Any] = {}
    for item in config.fields:
        value = answer.get(item.name)
        if value is None:
            if item.default is not None:
                outputs[item.name] = item.default
            elif item.required:
                errors.append({"field": f"answer.{item.name}", "type": "missing", "message": "this field is required"})
            else:
                outputs[item.name] = None
            continue
        checked, problem = field_value(item, value)
        if problem is not None:
            errors.append({"field": f"answer.{item.name}", "type": problem[0], "message": problem[1]})
        else:
            outputs[item.name] = checked
    handle = SOURCE_HANDLE
    ids = [choice.id for choice in config.actions]
    if ids:
        if action is None:
            errors.append({"field": "action", "type": "missing",
                           "message": f"pick one of the form's actions: {', '.join(ids)}"})
        elif action not in ids:
            errors.append({"field": "action", "type": "not_an_option",
                           "message": f"the form's actions are {', '.join(ids)}"})
        else:
            handle = action
            outputs[ACTION_OUTPUT] = action
    elif action is not None:
        errors.append({"field": "action", "type": "unknown_field", "message": "this form has no actions: leave it out"})
    if errors:
        raise WorkflowAnswerInvalid(errors)
    return outputs, handle


def field_value(item: FormField, value: Any) -> tuple[Any, tuple[str, str] | None]:
    """``value`` as field ``item`` takes it (a number may come as number text, as a form sends
    it), or the problem (type, message)."""
    match item.type:
        case "number":
            if isinstance(value, str) and _NUMBER_TEXT.match(value):
                number = float(value)
                value = int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (
                    float("inf"), float("-inf")):
                return value, ("type_error", "must be a number")
        case "boolean":
            if not isinstance(value, bool):
                return value, ("type_error", "must be true or false")
        case _:
            if not isinstance(value, str):
                return value, ("type_error", "must be text")
            if item.type == "select" and value not in item.options:
                return value, ("not_an_option", f"must be one of {', '.join(repr(o) for o in item.options)}")
            if item.max_length is not None and len(value) > item.max_length:
                return value, ("too_long", f"must be at most {item.max_length} characters")
    return value, None
