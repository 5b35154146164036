"""GET /api/v1/knowledge-bases/{kb_id}/documents/{document_id} — status, progress, timings, error."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.knowledge.api import DocumentOut
from shared.knowledge.paths import document_id as parse_document
from shared.knowledge.paths import kb_id as parse_kb
from shared.knowledge.wiring import document_service

app = http_app(function_for_module(__name__))


@app.endpoint
def get_document(kb_id: str, document_id: str) -> Response[Envelope[DocumentOut]]:
    return app.ok(document_service().get_document(current_principal(), parse_kb(kb_id),
                                                  parse_document(document_id)))


handler = app.lambda_handler()
