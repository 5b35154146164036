"""POST /api/v1/knowledge-bases/{kb_id}/documents/preview-chunks — segments a configuration
would produce, from text or an uploaded document; nothing is stored."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.knowledge.api import PreviewChunks, PreviewOut
from shared.knowledge.paths import kb_id as parse_kb
from shared.knowledge.wiring import document_service

app = http_app(function_for_module(__name__))


@app.endpoint
def preview_chunks(kb_id: str, body: PreviewChunks) -> Response[Envelope[PreviewOut]]:
    return app.ok(document_service().preview_chunks(current_principal(), parse_kb(kb_id), body))


handler = app.lambda_handler()
