"""Dify's dialect: bare JSON bodies (no envelope), errors as ``{"code", "message", "status"}``
with Dify's codes (``unauthorized``, ``not_found``, ``invalid_param``, ``not_chat_app``,
``app_unavailable``, ``completion_request_error``...), streams as ``data: <json>`` lines whose
``event`` field names the event, and ``event: ping`` when idle — as Dify's service API writes
them (its ``libs/external_api`` error handler, ``base_app_generate_response_converter``).

The one place where Stratus's domain errors become Dify's: a validation error (422) becomes
Dify's 400 ``invalid_param`` naming the fields; 401 ``unauthorized``; a missing conversation,
message or run Dify's 404 ``not_found`` with Dify's words; an app not published or gone
``app_unavailable``; a model provider's failure ``completion_request_error`` (400, as Dify
answers an invoke error); every other error keeps its status and its Stratus code
(``conversation_busy``...)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from shared.cache.ports import StreamEvent
from shared.db.paging import Page
from shared.errors import StratusError
from shared.http.dialect import Dialect, ErrorAnswer, EventDoc, compact_json

# Dify writes its keep-alive as an event with no data (Dify's clients skip it).
PING = b"event: ping\n\n"
# Stratus codes Dify has its own code (and words) for: (status, code, message or None to keep ours).
_CODES: dict[str, tuple[int, str, str | None]] = {
    "conversation_not_found": (404, "not_found", "Conversation Not Exists."),
    "message_not_found": (404, "not_found", "Message Not Exists."),
    "workflow_run_not_found": (404, "not_found", "Workflow run not found."),
    "biz_route_not_found": (404, "not_found", None),
    "agent_not_found": (400, "app_unavailable", None),
    "workflow_not_found": (400, "app_unavailable", None),
    "agent_not_published": (400, "app_unavailable", None),
    "workflow_not_published": (400, "app_unavailable", None),
    "model_not_configured": (400, "provider_not_initialize", None),
    "chat_message_too_long": (400, "completion_request_error", None),
    "model_rate_limited": (429, "rate_limit_error", None),
    "sys_rate_limited": (429, "too_many_requests", None),
    "biz_malformed_json": (400, "bad_request", None),
    "biz_method_not_allowed": (405, "method_not_allowed", None),
    "biz_unsupported_media_type": (415, "unsupported_media_type", None),
    "biz_payload_too_large": (413, "request_entity_too_large", None),
    "sys_internal_error": (500, "internal_server_error", None),
    "file_too_large": (413, "file_too_large", None),
    "file_type_not_allowed": (415, "unsupported_file_type", None),
    "file_upload_malformed": (400, "no_file_uploaded", None),
    "file_empty": (400, "no_file_uploaded", None),
}
# Model provider failures Dify reports as a failed completion (its CompletionRequestError).
_PROVIDER_FAILURES = frozenset({"model_provider_error", "model_unavailable", "model_timeout",
                                "model_context_too_long", "model_invalid_request", "model_auth_failed",
                                "model_bad_response", "model_circuit_open"})


def _field(name: str) -> str:
    return name.removeprefix("body.").removeprefix("query.").removeprefix("body")


def error_detail(error: StratusError) -> dict[str, Any]:
    """Dify's error body answering ``error``: ``{"code", "message", "status"}``."""
    status, code, message = error.status, error.code, error.message
    fields = error.details.get("fields") if isinstance(error.details, dict) else None
    if error.status == 422:
        status, code = DifyDialect.validation_status, "invalid_param"
        if isinstance(fields, list) and fields and all(isinstance(f, dict) for f in fields):
            message = "; ".join(f"{_field(str(f.get('field', ''))) or 'body'}: {f.get('message', '')}"
                                for f in fields)
    if error.code in _CODES:
        status, code, words = _CODES[error.code]
        message = words or message
    elif error.code in _PROVIDER_FAILURES:
        status, code = 400, "completion_request_error"
    elif error.status == 401:
        code = "unauthorized"
    elif error.status == 403 and error.code.startswith("auth_"):
        code = "forbidden"
    return {"code": code, "message": message, "status": status}


class DifyDialect(Dialect):
    name = "dify"
    validation_status = 400

    def success(self, data: Any, request_id: str) -> Any:
        from pydantic import BaseModel

        return data.model_dump(mode="json") if isinstance(data, BaseModel) else data

    def page(self, page: Page[Any], request_id: str) -> Any:
        return {"limit": page.limit, "has_more": page.page * page.limit < page.total,
                "data": [self.success(item, request_id) for item in page.items]}

    def error(self, error: StratusError, request_id: str) -> ErrorAnswer:
        body = error_detail(error)
        return ErrorAnswer(body["status"], json.dumps(body, separators=(",", ":"), default=str), dict(error.headers))

    def event(self, event: StreamEvent) -> bytes:
        """An event whose data is already Dify's (it names itself in ``event``)."""
        return data_line(event.data)

    def heartbeat(self) -> bytes:
        return PING

    # -- OpenAPI ------------------------------------------------------------------------------
    def error_schema(self) -> tuple[str, dict[str, Any]]:
        return "DifyError", {
            "type": "object",
            "description": "Dify's error body",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "string", "examples": ["not_found", "invalid_param", "unauthorized",
                                                         "not_chat_app", "app_unavailable"]},
                "message": {"type": "string"},
                "status": {"type": "integer", "description": "The HTTP status, repeated"},
            },
        }

    def success_schema(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def event_stream_schema(self, events: list[EventDoc]) -> dict[str, Any]:
        items: list[dict[str, Any]] = [{
            "title": doc.type,
            **({"description": doc.description} if doc.description else {}),
            "type": "object",
            "required": ["data"],
            "properties": {"data": {"type": "string", "contentMediaType": "application/json",
                                    "contentSchema": doc.data}},
        } for doc in events]
        items.append({"title": "ping", "description": "Sent when nothing else was for the heartbeat interval: "
                                                      "`event: ping` with no data",
                      "type": "object", "required": ["event"], "properties": {"event": {"const": "ping"}}})
        return {"description": "Dify's Server-Sent Events: `data: <json>` lines whose `event` field names the "
                               "event (no `event:` or `id:` lines), separated by a blank line; `event: ping` "
                               "when idle. The stream ends after `message_end`, `workflow_finished` or `error`.",
                "oneOf": items}


def data_line(data: Any) -> bytes:
    return b"data: " + compact_json(data).encode() + b"\n\n"


def now() -> int:
    return int(time.time())


def _timestamp(value: Any) -> int:
    """A Stratus ISO timestamp (or none) as Dify's seconds."""
    from datetime import datetime

    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value).timestamp())
        except ValueError:
            return now()
    if isinstance(value, datetime):
        return int(value.timestamp())
    return now()


def usage(message: dict[str, Any]) -> dict[str, Any]:
    """A stored answer's usage as Dify's ``metadata.usage`` (prices are not Stratus's to know: 0)."""
    found = message.get("usage") or {}
    prompt, completion = int(found.get("input_tokens") or 0), int(found.get("output_tokens") or 0)
    total = int(found.get("total_tokens") or prompt + completion)
    latency = (message.get("latency") or {}).get("total_ms")
    zero = "0"
    return {"prompt_tokens": prompt, "prompt_unit_price": zero, "prompt_price_unit": zero, "prompt_price": zero,
            "completion_tokens": completion, "completion_unit_price": zero, "completion_price_unit": zero,
            "completion_price": zero, "total_tokens": total, "total_price": zero, "currency": "USD",
            "latency": round(latency / 1000, 3) if isinstance(latency, int | float) else 0.0}


def retriever_resources(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored answer's references (the passages its prompt kept, numbered as it cites them)
    as Dify's ``retriever_resources``."""
    return [{"position": ref.get("index"), "dataset_id": str(ref.get("knowledge_base_id")), "dataset_name": "",
             "document_id": str(ref.get("document_id")), "document_name": ref.get("document_name", ""),
             "segment_id": str(ref.get("segment_id")), "score": ref.get("score"), "content": ref.get("content", ""),
             "segment_position": ref.get("position")}
            for ref in message.get("references") or []]


def metadata(message: dict[str, Any]) -> dict[str, Any]:
    return {"usage": usage(message), "retriever_resources": retriever_resources(message)}


def stream_error(error: dict[str, Any]) -> dict[str, Any]:
    """An ``error`` event's data as Dify's stream error (``status``, ``code``, ``message``)."""
    found = StratusError(str(error.get("message") or StratusError.default_message),
                         code=str(error.get("code") or StratusError.code), details=error.get("details") or {})
    status = error.get("status")
    if isinstance(status, int):
        found.status = status
    return error_detail(found)


# A chatflow agent's run progress on its turn's stream (Dify's advanced-chat apps send it).
_RUN_PROGRESS = frozenset({"workflow.started", "node.started", "node.finished", "workflow.finished"})


class ChatMessageStream:
    """One chat message's stream (:class:`shared.http.dialect.StreamTranslator`): a turn's events
    as Dify's. Each ``message.delta`` is a ``message`` event (``agent_message`` for a
    smart-reasoning agent, as Dify's agent apps send); a step's thought, tool call and result are
    one ``agent_thought`` (the same id, resent as it grows, as Dify does); ``message.complete``
    is ``message_end`` with the usage and the retriever resources; ``error`` Dify's stream
    error; a chatflow agent's run is ``workflow_started``, ``node_started``, ``node_finished`` and
    ``workflow_finished``, as Dify's advanced-chat apps send them. The turn's start and ``done``
    have no Dify counterpart (the stream just ends)."""

    def __init__(self, *, task_id: str, message_id: str, conversation_id: str | None, agent: bool,
                 created_at: int) -> None:
        self._head: dict[str, Any] = {"task_id": task_id, "id": message_id, "message_id": message_id}
        if conversation_id is not None:
            self._head["conversation_id"] = conversation_id
        self._message_event = "agent_message" if agent else "message"
        self._created_at = created_at
        self._thoughts: dict[int, dict[str, Any]] = {}
        # A chatflow agent's run, once it started.
        self._run: WorkflowRunStream | None = None

    def _line(self, event: str, **data: Any) -> bytes:
        return data_line({"event": event, **self._head, **data})

    def _thought(self, step: int, **changes: Any) -> bytes:
        thought = self._thoughts.setdefault(step, {
            "id": str(uuid.uuid5(uuid.UUID(self._head["message_id"]), f"thought-{step}")), "position": step,
            "thought": "", "observation": "", "tool": "", "tool_labels": {}, "tool_input": "",
            "message_files": []})
        for key, value in changes.items():
            thought[key] = (thought[key] + ";" + value) if thought[key] and key in ("tool", "tool_input",
                                                                                  "observation") else value
        return data_line({"event": "agent_thought", **self._head, **thought, "created_at": self._created_at})

    def frames(self, event: StreamEvent) -> list[bytes]:
        kind, data = event.type, event.data
        if kind == "message.delta":
            return [self._line(self._message_event, answer=data.get("text", ""), created_at=self._created_at)]
        if kind == "agent.thought":
            return [self._thought(int(data.get("step") or 1), thought=str(data.get("text", "")))]
        if kind == "tool.call":
            arguments = data.get("arguments")
            return [self._thought(int(data.get("step") or 1), tool=str(data.get("name", "")),
                                  tool_input=compact_json({data.get("name", ""): arguments}))]
        if kind == "tool.result":
            return [self._thought(int(data.get("step") or 1), observation=str(data.get("output", "")))]
        if kind == "workflow.started":
            self._run = WorkflowRunStream(run_id=str(data.get("run_id")), workflow_id=str(data.get("workflow_id")),
                                          inputs={}, created_at=self._created_at, task_id=self._head["task_id"],
                                          head={k: v for k, v in self._head.items() if k != "task_id"})
        if kind in _RUN_PROGRESS and self._run is not None:
            return self._run.frames(event)
        if kind == "message.complete":
            return [self._line("message_end", metadata=metadata(data))]
        if kind == "error":
            return [self._line("error", **stream_error(data))]
        return []

    def heartbeat(self) -> bytes:
        return PING


class WorkflowRunStream:
    """One workflow run's stream as Dify's: ``workflow_started``, ``node_started``,
    ``text_chunk`` (an LLM node's text), ``node_finished``, ``workflow_finished`` (with the
    run's tokens and steps, counted from its nodes); an ``error`` only when the run's stream
    failed without finishing (a failed run is a ``workflow_finished`` with ``status: failed``,
    as Dify sends it). Pauses, iterations and loops have no counterpart here and are skipped."""

    def __init__(self, *, run_id: str, workflow_id: str, inputs: dict[str, Any], created_at: int,
                 task_id: str | None = None, head: dict[str, Any] | None = None) -> None:
        self._run_id = run_id
        # A chatflow agent's run inside a chat message: the message's task and ids head each event.
        self._task_id = task_id or run_id
        self._head = head or {}
        self._workflow_id = workflow_id
        self._inputs = inputs
        self._created_at = created_at
        self._started = time.monotonic()
        self._index = 0
        self._tokens = 0
        self._steps = 0
        self._finished = False
        self._nodes: dict[tuple[str, Any, Any], tuple[str, int, int]] = {}

    def _line(self, event: str, data: dict[str, Any]) -> bytes:
        return data_line({"event": event, **self._head, "task_id": self._task_id, "workflow_run_id": self._run_id,
                          "data": data})

    def _node(self, data: dict[str, Any], started: bool) -> tuple[str, int, int]:
        key = (str(data.get("node_id")), data.get("container_id"), data.get("index"))
        if started or key not in self._nodes:
            self._index += 1
            self._nodes[key] = (str(uuid.uuid5(uuid.UUID(self._run_id), f"{key}-{self._index}")), self._index, now())
        return self._nodes[key]

    def frames(self, event: StreamEvent) -> list[bytes]:
        kind, data = event.type, event.data
        if kind == "workflow.started":
            return [self._line("workflow_started", {"id": self._run_id, "workflow_id": self._workflow_id,
                                                    "sequence_number": 1, "inputs": self._inputs,
                                                    "created_at": self._created_at})]
        if kind == "node.started":
            node_id, index, created = self._node(data, started=True)
            return [self._line("node_started", {
                "id": node_id, "node_id": data.get("node_id"), "node_type": node_type(str(data.get("node_type"))),
                "title": data.get("title") or data.get("node_id"), "index": index, "predecessor_node_id": None,
                "inputs": None, "created_at": created, "extras": {}})]
        if kind == "node.delta":
            return [self._line("text_chunk", {"text": data.get("text", ""),
                                              "from_variable_selector": [data.get("node_id"), "text"]})]
        if kind == "node.finished":
            node_id, index, created = self._node(data, started=False)
            tokens = int(data.get("tokens") or 0)
            self._tokens += tokens
            self._steps += 1
            error = data.get("error") or {}
            elapsed = data.get("elapsed_ms")
            return [self._line("node_finished", {
                "id": node_id, "node_id": data.get("node_id"), "node_type": node_type(str(data.get("node_type"))),
                "title": data.get("title") or data.get("node_id"), "index": index, "predecessor_node_id": None,
                "inputs": None, "process_data": None, "outputs": data.get("outputs") or {},
                "status": run_status(str(data.get("status"))), "error": error.get("message") if error else None,
                "elapsed_time": round(elapsed / 1000, 3) if isinstance(elapsed, int | float) else 0.0,
                "execution_metadata": {"total_tokens": tokens}, "created_at": created,
                "finished_at": _timestamp(data.get("finished_at"))})]
        if kind == "workflow.finished":
            self._finished = True
            error = data.get("error") or {}
            return [self._line("workflow_finished", {
                "id": self._run_id, "workflow_id": self._workflow_id, "sequence_number": 1,
                "status": run_status(str(data.get("status"))), "outputs": data.get("outputs"),
                "error": error.get("message") if error else None,
                "elapsed_time": round(time.monotonic() - self._started, 3), "total_tokens": self._tokens,
                "total_steps": self._steps, "created_at": self._created_at, "finished_at": now()})]
        if kind == "error" and not self._finished:
            return [data_line({"event": "error", "task_id": self._task_id, "workflow_run_id": self._run_id,
                               **stream_error(data)})]
        return []

    def heartbeat(self) -> bytes:
        return PING


def run_status(status: str) -> str:
    """A Stratus run or node status in Dify's words (``cancelled`` is Dify's ``stopped``; a run
    waiting for human input is Dify's ``paused``, as Dify ≥ 1.10 reports it)."""
    return {"cancelled": "stopped", "pending": "running"}.get(status, status)


def node_type(stratus_type: str) -> str:
    from shared.workflows.dify import STRATUS_TYPES

    return STRATUS_TYPES.get(stratus_type, stratus_type)


DIFY = DifyDialect()
