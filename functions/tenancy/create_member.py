"""POST /api/v1/members — add a member with a role (optionally issuing their first token)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.tenancy.models import CreateMember, MemberCreated
from shared.tenancy.service import tenancy_service

app = http_app(function_for_module(__name__))


@app.endpoint
def create_member(body: CreateMember) -> Response[Envelope[MemberCreated]]:
    return app.created(tenancy_service().create_member(current_principal(), body))


handler = app.lambda_handler()
