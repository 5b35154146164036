"""GET /api/v1/workflows/{workflow_id}/runs — a workflow's runs, newest first (``?status=``
filters), without their node history."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.workflows.paths import workflow_id as path_workflow_id
from shared.workflows.runs_api import RUN_SORTS, WorkflowRunSummary
from shared.workflows.wiring_api import workflow_run_service

app = http_app(function_for_module(__name__))

Status = Literal["pending", "running", "paused", "succeeded", "failed", "cancelled"]


@app.endpoint
def list_runs(workflow_id: str,
              status: Annotated[Status | None, Query(description="Only runs in this status")] = None,
              page: PageQuery = 1, limit: LimitQuery = 20,
              sort: SortQuery = "-created_at") -> Response[ListEnvelope[WorkflowRunSummary]]:
    listed = workflow_run_service().list_runs(current_principal(), path_workflow_id(workflow_id), status,
                                              page_request(page, limit, sort, RUN_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
