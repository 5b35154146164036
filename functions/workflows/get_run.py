"""GET /api/v1/workflow-runs/{run_id} — a run: status, outputs, error with the failing node,
elapsed, tokens, state transitions, and every node it settled."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.workflows.paths import run_id as path_run_id
from shared.workflows.runs_api import WorkflowRunOut
from shared.workflows.wiring_api import workflow_run_service

app = http_app(function_for_module(__name__))


@app.endpoint
def get_run(run_id: str) -> Response[Envelope[WorkflowRunOut]]:
    return app.ok(workflow_run_service().get_run(current_principal(), path_run_id(run_id)))


handler = app.lambda_handler()
