"""POST /api/v1/workflows — create a workflow (its draft; no document: a start node linked to an end node)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.workflows.api import CreateWorkflow, WorkflowOut
from shared.workflows.wiring_api import workflow_service

app = http_app(function_for_module(__name__))


@app.endpoint
def create_workflow(body: CreateWorkflow) -> Response[Envelope[WorkflowOut]]:
    return app.created(workflow_service().create_workflow(current_principal(), body))


handler = app.lambda_handler()
