"""POST /api/v1/tenants — a platform admin creates a tenant and its first owner."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.envelope import Envelope
from shared.tenancy.models import CreateTenant, TenantCreated
from shared.tenancy.service import tenancy_service

app = http_app(function_for_module(__name__))


@app.endpoint
def create_tenant(body: CreateTenant) -> Response[Envelope[TenantCreated]]:
    return app.created(tenancy_service().create_tenant(body))


handler = app.lambda_handler()
