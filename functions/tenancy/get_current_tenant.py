"""GET /api/v1/tenants/current — the caller's tenant."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.tenancy.models import Tenant
from shared.tenancy.service import tenancy_service

app = http_app(function_for_module(__name__))


@app.endpoint
def get_current_tenant() -> Response[Envelope[Tenant]]:
    return app.ok(tenancy_service().current_tenant(current_principal()))


handler = app.lambda_handler()
