"""GET /api/v1/api-keys — the caller's keys (every key of the tenant for member managers)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.tenancy.models import ApiKey
from shared.tenancy.repository import API_KEY_SORTS
from shared.tenancy.service import tenancy_service

app = http_app(function_for_module(__name__))


@app.endpoint
def list_api_keys(page: PageQuery = 1, limit: LimitQuery = 20,
                  sort: SortQuery = "-created_at") -> Response[ListEnvelope[ApiKey]]:
    listed = tenancy_service().list_api_keys(
        current_principal(), page_request(page, limit, sort, API_KEY_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
