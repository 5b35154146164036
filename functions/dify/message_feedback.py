"""POST /dify/v1/messages/{message_id}/feedbacks — like or dislike an answer."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.dify.api import DifyFeedbackRequest, DifyResultOut
from shared.facades.dify.service import dify_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def message_feedback(message_id: str, body: DifyFeedbackRequest) -> Response[DifyResultOut]:
    return app.ok(dify_service().feedback(current_principal(), message_id, body))


handler = app.lambda_handler()
