"""POST /api/v1/knowledge-bases/{kb_id}/documents — a presigned upload form, or inline text."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.knowledge.api import CreateDocument, DocumentCreated
from shared.knowledge.paths import kb_id as parse_kb
from shared.knowledge.wiring import document_service

app = http_app(function_for_module(__name__))


@app.endpoint
def create_document(kb_id: str, body: CreateDocument) -> Response[Envelope[DocumentCreated]]:
    return app.created(document_service().create_document(current_principal(), parse_kb(kb_id), body))


handler = app.lambda_handler()
