"""DELETE /api/v1/workflows/{workflow_id} — soft delete (the name is free again)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.workflows.paths import workflow_id as path_workflow_id
from shared.workflows.wiring_api import workflow_service

app = http_app(function_for_module(__name__))


@app.endpoint
def delete_workflow(workflow_id: str) -> Response[None]:
    workflow_service().delete_workflow(current_principal(), path_workflow_id(workflow_id))
    return app.no_content()


handler = app.lambda_handler()
