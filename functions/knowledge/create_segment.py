"""POST /api/v1/knowledge-bases/{kb_id}/documents/{document_id}/segments — a segment by hand,
embedded before it is stored."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.knowledge.api import CreateSegment, SegmentOut
from shared.knowledge.paths import document_id as parse_document
from shared.knowledge.paths import kb_id as parse_kb
from shared.knowledge.wiring import segment_service

app = http_app(function_for_module(__name__))


@app.endpoint
def create_segment(kb_id: str, document_id: str, body: CreateSegment) -> Response[Envelope[SegmentOut]]:
    return app.created(segment_service().create_segment(current_principal(), parse_kb(kb_id),
                                                        parse_document(document_id), body))


handler = app.lambda_handler()
