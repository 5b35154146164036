"""The built-in tools every tenant has: ``knowledge_search`` (the retrieval service),
``web_fetch`` (a URL to readable text, through the safe fetch path) and ``current_time``; and
the tenant's published workflows, each a tool whose arguments are its start inputs."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.tools.contract import BUILTIN, WORKFLOW, ToolRef, ToolSpec

if TYPE_CHECKING:
    from shared.workflows.configs import InputVariable
    from shared.workflows.published import PublishedWorkflow

KNOWLEDGE_SEARCH = "knowledge_search"
WEB_FETCH = "web_fetch"
CURRENT_TIME = "current_time"
BUILTIN_NAMES = (KNOWLEDGE_SEARCH, WEB_FETCH, CURRENT_TIME)
BUILTIN_PROVIDER_NAME = "Built-in tools"
# web_fetch reads at most this much of a page (and answers at most max_chars of its text).
WEB_FETCH_MAX_BYTES = 2 * 1024 * 1024
WEB_FETCH_DEFAULT_CHARS = 8000

_SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    KNOWLEDGE_SEARCH: (
        "Search the knowledge bases for passages relevant to a query; answers the best passages with their "
        "document names and scores.",
        {"type": "object", "additionalProperties": False, "required": ["query"], "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "What to look for"},
            "top_k": {"type": "integer", "minimum": 1, "maximum": 20, "description": "How many passages (default 5)"},
            "knowledge_base_ids": {"type": "array", "maxItems": 20, "items": {"type": "string", "format": "uuid"},
                                   "description": "The knowledge bases to search, when the caller binds none (an "
                                                  "agent searches its own)"},
        }}),
    WEB_FETCH: (
        "Fetch a public web page (http or https) and answer its readable text (HTML converted to text).",
        {"type": "object", "additionalProperties": False, "required": ["url"], "properties": {
            "url": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "The page's URL"},
            "max_chars": {"type": "integer", "minimum": 100, "maximum": 100_000,
                          "description": f"At most this much text (default {WEB_FETCH_DEFAULT_CHARS})"},
        }}),
    CURRENT_TIME: (
        "The current date and time, in UTC or a named time zone.",
        {"type": "object", "additionalProperties": False, "properties": {
            "timezone": {"type": "string", "maxLength": 64,
                         "description": "An IANA time zone such as Europe/Paris (default UTC)"},
        }}),
}


def builtin_specs(timeout_s: float) -> list[ToolSpec]:
    return [ToolSpec(ref=ToolRef(BUILTIN, name), name=name, description=description, parameters=schema,
                     kind="builtin", provider_name=BUILTIN_PROVIDER_NAME, timeout_s=timeout_s)
            for name, (description, schema) in _SPECS.items()]


# --- current_time --------------------------------------------------------------------------------


class ArgumentProblem(ValueError):
    pass


def current_time(now: datetime, arguments: Mapping[str, Any]) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = arguments.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ArgumentProblem(f"timezone: {name!r} is not a known IANA time zone (e.g. UTC, Europe/Paris, "
                              "America/New_York)") from None
    local = now.astimezone(zone)
    return json.dumps({"iso": local.isoformat(timespec="seconds"), "timezone": name,
                       "weekday": local.strftime("%A"), "unix": int(now.timestamp())})


# --- knowledge_search ------------------------------------------------------------------------------


def knowledge_output(retrieval: Any) -> str:
    passages = [{"document": p.document_name, "score": round(p.score, 4), "page": p.page, "content": p.content}
                for p in retrieval.passages]
    if not passages:
        return "No passage matched the query."
    return json.dumps({"passages": passages}, ensure_ascii=False)


def knowledge_base_ids(arguments: Mapping[str, Any], bound: tuple[uuid.UUID, ...] | None) -> list[uuid.UUID]:
    """The bound knowledge bases (an agent's: the model cannot name others of the tenant), else
    those the arguments name."""
    if bound is not None:
        if not bound:
            raise ArgumentProblem("there is no knowledge base to search here (the agent has none)")
        return list(bound)
    named = arguments.get("knowledge_base_ids") or []
    ids: list[uuid.UUID] = []
    for i, value in enumerate(named):
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            raise ArgumentProblem(f"knowledge_base_ids[{i}]: {value!r} is not a knowledge base id") from None
    if not ids:
        raise ArgumentProblem("knowledge_base_ids: name the knowledge bases to search (no agent binds any here)")
    return ids


# --- workflows ---------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", text.lower())).strip("_")[:56] or "workflow"


def _input_schema(variable: InputVariable) -> dict[str, Any]:
    types = {"string": {"type": "string"}, "number": {"type": "number"}, "boolean": {"type": "boolean"},
             "object": {"type": "object"}}
    if variable.type.startswith("array["):
        inner = variable.type[len("array["):-1]
        schema: dict[str, Any] = {"type": "array", "items": types.get(inner, {})}
    else:
        schema = dict(types.get(variable.type, {}))
    if variable.options:
        schema["enum"] = list(variable.options)
    if variable.max_length and variable.type == "string":
        schema["maxLength"] = variable.max_length
    description = variable.description or variable.label
    if description:
        schema["description"] = description
    if variable.default is not None:
        schema["default"] = variable.default
    return schema


def workflow_specs(published: list[PublishedWorkflow], timeout_s: float) -> list[ToolSpec]:
    from shared.workflows.validation import input_schema

    specs: list[ToolSpec] = []
    taken = set(BUILTIN_NAMES)
    for workflow in published:
        try:
            variables = input_schema(workflow.document)
        except ValueError:
            continue
        base = _slug(workflow.name)
        name, n = base, 2
        while name in taken:
            name = f"{base}_{n}"
            n += 1
        taken.add(name)
        properties = {v.variable: _input_schema(v) for v in variables}
        required = [v.variable for v in variables if v.required and v.default is None]
        parameters: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            parameters["required"] = required
        description = workflow.description or f"Runs the workflow {workflow.name!r} and answers its outputs."
        specs.append(ToolSpec(ref=ToolRef(WORKFLOW, str(workflow.workflow_id)), name=name, description=description,
                              parameters=parameters, kind="workflow", provider_name=BUILTIN_PROVIDER_NAME,
                              timeout_s=timeout_s))
    return specs
