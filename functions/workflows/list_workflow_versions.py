"""GET /api/v1/workflows/{workflow_id}/versions — published versions, newest first, without their documents."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.workflows.api import WorkflowVersionSummary
from shared.workflows.paths import workflow_id as path_workflow_id
from shared.workflows.repository import VERSION_SORTS
from shared.workflows.wiring_api import workflow_service

app = http_app(function_for_module(__name__))


@app.endpoint
def list_workflow_versions(workflow_id: str, page: PageQuery = 1, limit: LimitQuery = 20,
                           sort: SortQuery = "-number") -> Response[ListEnvelope[WorkflowVersionSummary]]:
    listed = workflow_service().list_versions(current_principal(), path_workflow_id(workflow_id),
                                              page_request(page, limit, sort, VERSION_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
