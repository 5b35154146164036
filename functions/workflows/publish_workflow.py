"""POST /api/v1/workflows/{workflow_id}/publish — validate the draft and snapshot it as the next
immutable version (422 ``workflow_invalid`` listing every problem, each naming its node and field)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.workflows.api import PublishWorkflow, WorkflowVersionOut
from shared.workflows.paths import workflow_id as path_workflow_id
from shared.workflows.wiring_api import workflow_service

app = http_app(function_for_module(__name__))


@app.endpoint
def publish_workflow(workflow_id: str, body: PublishWorkflow | None = None) -> Response[Envelope[WorkflowVersionOut]]:
    version = workflow_service().publish_workflow(current_principal(), path_workflow_id(workflow_id),
                                                  body or PublishWorkflow())
    return app.created(version)


handler = app.lambda_handler()
