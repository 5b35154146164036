"""POST /api/v1/workflows/import — a new workflow (its draft) from a Dify app DSL file; model
references are mapped to the tenant's models and every substitution is listed."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.workflows.api import ImportWorkflow, WorkflowImported
from shared.workflows.wiring_api import workflow_service

app = http_app(function_for_module(__name__))


@app.endpoint
def import_workflow(body: ImportWorkflow) -> Response[Envelope[WorkflowImported]]:
    return app.created(workflow_service().import_workflow(current_principal(), body))


handler = app.lambda_handler()
