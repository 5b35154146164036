"""GET /api/v1/tenants — a platform admin lists the tenants."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.tenancy.models import Tenant
from shared.tenancy.repository import TENANT_SORTS
from shared.tenancy.service import tenancy_service

app = http_app(function_for_module(__name__))


@app.endpoint
def list_tenants(page: PageQuery = 1, limit: LimitQuery = 20,
                 sort: SortQuery = "created_at") -> Response[ListEnvelope[Tenant]]:
    return app.page(tenancy_service().list_tenants(page_request(page, limit, sort, TENANT_SORTS)))


handler = app.lambda_handler()
