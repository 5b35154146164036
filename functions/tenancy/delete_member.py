"""DELETE /api/v1/members/{member_id} — remove a member and revoke their keys."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.errors import NotFound
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.ids import path_id
from shared.tenancy.service import tenancy_service

app = http_app(function_for_module(__name__))


@app.endpoint
def delete_member(member_id: str) -> Response[None]:
    parsed = path_id(member_id, NotFound("Member not found", code="member_not_found"))
    tenancy_service().delete_member(current_principal(), parsed)
    return app.no_content()


handler = app.lambda_handler()
