"""PATCH /api/v1/members/{member_id} — change a member's role; effective at once."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.errors import NotFound
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.ids import path_id
from shared.tenancy.models import Member, UpdateMember
from shared.tenancy.service import tenancy_service

app = http_app(function_for_module(__name__))


@app.endpoint
def update_member(member_id: str, body: UpdateMember) -> Response[Envelope[Member]]:
    parsed = path_id(member_id, NotFound("Member not found", code="member_not_found"))
    return app.ok(tenancy_service().update_member(current_principal(), parsed, body))


handler = app.lambda_handler()
