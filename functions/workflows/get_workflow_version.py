"""GET /api/v1/workflows/{workflow_id}/versions/{number} — one published version with its document."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.workflows.api import WorkflowVersionOut
from shared.workflows.paths import version_number
from shared.workflows.paths import workflow_id as path_workflow_id
from shared.workflows.wiring_api import workflow_service

app = http_app(function_for_module(__name__))


@app.endpoint
def get_workflow_version(workflow_id: str, number: str) -> Response[Envelope[WorkflowVersionOut]]:
    return app.ok(workflow_service().get_version(current_principal(), path_workflow_id(workflow_id),
                                                 version_number(number)))


handler = app.lambda_handler()
