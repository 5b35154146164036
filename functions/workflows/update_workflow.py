"""PATCH /api/v1/workflows/{workflow_id} — change the draft (saved as sent, shape-checked; stale version → 409)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.workflows.api import UpdateWorkflow, WorkflowOut
from shared.workflows.paths import workflow_id as path_workflow_id
from shared.workflows.wiring_api import workflow_service

app = http_app(function_for_module(__name__))


@app.endpoint
def update_workflow(workflow_id: str, body: UpdateWorkflow) -> Response[Envelope[WorkflowOut]]:
    return app.ok(workflow_service().update_workflow(current_principal(), path_workflow_id(workflow_id), body))


handler = app.lambda_handler()
