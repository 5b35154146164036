"""The workflow-stream function: an ASGI app behind a function URL (the Lambda Web Adapter runs
it in AWS; the local gateway mounts it), serving the paths the edge sends it
(docs/adr/0035-workflow-run-streaming.md):

- ``POST /api/v1/workflows/{workflow_id}/runs`` — start a run in any mode: ``stream`` answers the
  run's events as Server-Sent Events until ``done``; ``sync`` and ``async`` answer as they always
  have (200 with the finished run, or 202 with ``Location``). The edge routes by path, so the
  streaming form brings the whole path here.
- ``GET /api/v1/workflows/{workflow_id}/runs`` — the workflow's runs (the same path).
- ``GET /api/v1/workflow-runs/{run_id}/events`` — replay after ``Last-Event-ID``, then follow live.

- ``POST /dify/v1/workflows/run`` and ``GET /dify/v1/workflows/run/{workflow_run_id}`` — the same
  runs in Dify's shape, of the workflow the key is bound to (docs/adr/0046-dify-service-api.md).

- ``/coze/v1/workflow/...`` and ``/coze/v1/workflows...`` — Coze's workflow API: runs (sync,
  async, streamed, resumed after an interrupt), run histories, chatflow chats, workflows and their
  versions (docs/adr/0049-coze-workflows.md).

A client that leaves stops only its stream: the run goes on in Step Functions.
"""

from __future__ import annotations

import uuid
from typing import Any

from functions.catalog import function_for_module
from shared.config import get_settings
from shared.db.paging import page_request
from shared.facades.dify.api import DifyWorkflowRunRequest
from shared.http.stream import Answer, StreamCall, blocking, stream_app
from shared.workflows.paths import run_id as path_run_id
from shared.workflows.paths import workflow_id as path_workflow_id
from shared.workflows.run_stream import Follow
from shared.workflows.runs_api import RUN_SORTS, RunEventsQuery, RunListQuery, StartRun
from shared.workflows.runs_service import is_final
from shared.workflows.wiring_api import workflow_run_service

api = stream_app(function_for_module(__name__), heartbeat_s=lambda: get_settings().workflow_stream_heartbeat_s)
_RUNS = "/api/v1/workflows/{workflow_id}/runs"


def _bounds(call: StreamCall[Any, Any]) -> Follow:
    return Follow(block_ms=int(call.heartbeat_s * 1000), follow_s=get_settings().workflow_stream_follow_s)


@api.route("POST", _RUNS)
async def start_run(call: StreamCall[StartRun, None]) -> Answer:
    service = workflow_run_service()
    workflow_id = path_workflow_id(call.path_params["workflow_id"])
    run = await blocking(lambda: service.start_run(call.principal, workflow_id, call.body))
    location = {"Location": f"/api/v1/workflow-runs/{run.id}"}
    if call.body.mode != "stream":
        return call.ok(run) if is_final(run) else call.ok(run, 202, location)
    batches = await blocking(lambda: service.follow_run(call.principal, run.id, None, _bounds(call)))
    return call.follow(batches, "workflow-run-stream", headers=location, until_gone=True)


@api.route("GET", _RUNS)
async def list_runs(call: StreamCall[None, RunListQuery]) -> Answer:
    workflow_id = path_workflow_id(call.path_params["workflow_id"])
    query = call.query
    listed = await blocking(lambda: workflow_run_service().list_runs(
        call.principal, workflow_id, query.status, page_request(query.page, query.limit, query.sort, RUN_SORTS)))
    return call.page(listed)


@api.route("GET", "/api/v1/workflow-runs/{run_id}/events")
async def events(call: StreamCall[None, RunEventsQuery]) -> Answer:
    run_id = path_run_id(call.path_params["run_id"])
    after = call.last_event_id
    field = "headers.last-event-id" if call.request.headers.get("last-event-id") else "query.last_event_id"
    batches = await blocking(lambda: workflow_run_service().follow_run(call.principal, run_id, after, _bounds(call),
                                                                        after_field=field))
    return call.follow(batches, "workflow-run-events", until_gone=True)


@api.route("POST", "/dify/v1/workflows/run")
async def dify_run(call: StreamCall[DifyWorkflowRunRequest, None]) -> Answer:
    from shared.facades.dify.service import dify_service

    facade = dify_service()
    started = await blocking(lambda: facade.start_run(call.principal, call.body))
    if call.body.response_mode == "blocking":
        return call.ok(facade.finished_run(started, get_settings().workflow_sync_wait_s))
    bounds = _bounds(call)
    batches = await blocking(lambda: facade.follow(call.principal, started, bounds.block_ms, bounds.follow_s))
    return call.follow(batches, "workflow-run-stream", until_gone=True, translator=started.stream())


@api.route("GET", "/dify/v1/workflows/run/{workflow_run_id}")
async def dify_get_run(call: StreamCall[None, None]) -> Answer:
    from shared.facades.dify.service import dify_service

    run_id = call.path_params["workflow_run_id"]
    return call.ok(await blocking(lambda: dify_service().get_run(call.principal, run_id)))


# Coze's workflow API (docs/adr/0049-coze-workflows.md) ----------------------------------------------


@api.route("POST", "/coze/v1/workflow/run")
async def coze_run(call: StreamCall[Any, None]) -> Answer:
    from shared.facades.coze.workflows import coze_workflows
    from shared.http.stream import json_answer

    facade, body = coze_workflows(), call.body
    run = await blocking(lambda: facade.start(call.principal, body, "async" if body.is_async else "sync"))
    answer = json_answer(facade.run_result(run, body.is_async, get_settings().workflow_sync_wait_s, call.request_id),
                         call.request_id)
    answer.headers.update(call.dialect.answer_headers(call.request_id))
    return answer


def _coze_follow(call: StreamCall[Any, Any], run_id: uuid.UUID, after: str | None) -> Answer:
    from shared.facades.coze.workflows import CozeRunStream, coze_workflows

    bounds = _bounds(call)
    batches = coze_workflows().follow(call.principal, run_id, after, bounds.block_ms, bounds.follow_s)
    return call.follow(batches, "coze-workflow-stream", until_gone=True, translator=CozeRunStream())


@api.route("POST", "/coze/v1/workflow/stream_run")
async def coze_stream_run(call: StreamCall[Any, None]) -> Answer:
    from shared.facades.coze.workflows import coze_workflows

    run = await blocking(lambda: coze_workflows().start(call.principal, call.body, "stream"))
    return _coze_follow(call, run.id, None)


@api.route("POST", "/coze/v1/workflow/stream_resume")
async def coze_stream_resume(call: StreamCall[Any, None]) -> Answer:
    from shared.facades.coze.workflows import coze_workflows

    run_id, after = await blocking(lambda: coze_workflows().resume(call.principal, call.body))
    return _coze_follow(call, run_id, after)


@api.route("POST", "/coze/v1/workflows/chat")
async def coze_workflow_chat(call: StreamCall[Any, None]) -> Answer:
    from shared.facades.coze.workflows import CozeWorkflowChatStream, coze_workflows

    facade = coze_workflows()
    run, chat = await blocking(lambda: facade.start_chat(call.principal, call.body))
    bounds = _bounds(call)
    batches = facade.follow(call.principal, run.id, None, bounds.block_ms, bounds.follow_s)
    return call.follow(batches, "coze-workflow-chat", until_gone=True, translator=CozeWorkflowChatStream(chat))


@api.route("GET", "/coze/v1/workflows")
async def coze_workflows_list(call: StreamCall[None, Any]) -> Answer:
    from shared.facades.coze.workflows import coze_workflows

    return call.ok(await blocking(lambda: coze_workflows().list_workflows(call.principal, call.query)))


@api.route("GET", "/coze/v1/workflows/{workflow_id}")
async def coze_workflow_get(call: StreamCall[None, None]) -> Answer:
    from shared.facades.coze.workflows import coze_workflows

    workflow_id = call.path_params["workflow_id"]
    return call.ok(await blocking(lambda: coze_workflows().info(call.principal, workflow_id)))


@api.route("GET", "/coze/v1/workflows/{workflow_id}/versions")
async def coze_workflow_versions(call: StreamCall[None, Any]) -> Answer:
    from shared.facades.coze.workflows import coze_workflows

    workflow_id = call.path_params["workflow_id"]
    return call.ok(await blocking(lambda: coze_workflows().versions(call.principal, workflow_id, call.query)))


@api.route("GET", "/coze/v1/workflows/{workflow_id}/run_histories/{execute_id}")
async def coze_run_history(call: StreamCall[None, None]) -> Answer:
    from shared.facades.coze.workflows import coze_workflows

    workflow_id, execute_id = call.path_params["workflow_id"], call.path_params["execute_id"]
    return call.ok(await blocking(lambda: coze_workflows().history(call.principal, workflow_id, execute_id,
                                                                   call.request_id)))


app = api.asgi()
