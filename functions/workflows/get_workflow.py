"""GET /api/v1/workflows/{workflow_id} — one workflow with its draft and the draft's problems."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.workflows.api import WorkflowOut
from shared.workflows.paths import workflow_id as path_workflow_id
from shared.workflows.wiring_api import workflow_service

app = http_app(function_for_module(__name__))


@app.endpoint
def get_workflow(workflow_id: str) -> Response[Envelope[WorkflowOut]]:
    return app.ok(workflow_service().get_workflow(current_principal(), path_workflow_id(workflow_id)))


handler = app.lambda_handler()
