"""GET /api/v1/members — the tenant's members and their roles."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.tenancy.models import Member
from shared.tenancy.repository import MEMBER_SORTS
from shared.tenancy.service import tenancy_service

app = http_app(function_for_module(__name__))


@app.endpoint
def list_members(page: PageQuery = 1, limit: LimitQuery = 20,
                 sort: SortQuery = "created_at") -> Response[ListEnvelope[Member]]:
    listed = tenancy_service().list_members(
        current_principal(), page_request(page, limit, sort, MEMBER_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
