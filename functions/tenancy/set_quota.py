"""PUT /api/v1/tenants/{tenant_id}/quota — a platform admin sets a tenant's monthly token quota."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.errors import NotFound
from shared.http.api import http_app
from shared.http.envelope import Envelope
from shared.ids import path_id
from shared.models.api import Quota, UpdateQuota
from shared.models.wiring import usage_service

app = http_app(function_for_module(__name__))


@app.endpoint
def set_quota(tenant_id: str, body: UpdateQuota) -> Response[Envelope[Quota]]:
    tenant = path_id(tenant_id, NotFound("Tenant not found", code="tenant_not_found"))
    return app.ok(usage_service().set_quota(tenant, body.monthly_tokens_soft, body.monthly_tokens_hard))


handler = app.lambda_handler()
