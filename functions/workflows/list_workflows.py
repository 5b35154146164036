"""GET /api/v1/workflows — the tenant's workflows, without their documents (``?name=`` filters)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.workflows.api import WorkflowSummary
from shared.workflows.repository import WORKFLOW_SORTS
from shared.workflows.wiring_api import workflow_service

app = http_app(function_for_module(__name__))

# PostgreSQL text cannot hold NUL: a 422 here, not a database error.
NO_NUL = r"^[^\x00]*$"


@app.endpoint
def list_workflows(name: Annotated[str | None, Query(min_length=1, max_length=100, pattern=NO_NUL,
                                                     description="Only workflows whose name contains this text, "
                                                                 "ignoring case")] = None,
                   page: PageQuery = 1, limit: LimitQuery = 20,
                   sort: SortQuery = "-created_at") -> Response[ListEnvelope[WorkflowSummary]]:
    listed = workflow_service().list_workflows(current_principal(), name,
                                               page_request(page, limit, sort, WORKFLOW_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
