"""POST /api/v1/knowledge-bases/{kb_id}/documents/{document_id}/reindex — index again (202)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.knowledge.api import DocumentOut, ReindexDocument
from shared.knowledge.paths import document_id as parse_document
from shared.knowledge.paths import kb_id as parse_kb
from shared.knowledge.wiring import document_service

app = http_app(function_for_module(__name__))


@app.endpoint
def reindex_document(kb_id: str, document_id: str, body: ReindexDocument) -> Response[Envelope[DocumentOut]]:
    document = document_service().reindex_document(current_principal(), parse_kb(kb_id),
                                                   parse_document(document_id), body.chunking)
    return app.ok(document, status=202)


handler = app.lambda_handler()
