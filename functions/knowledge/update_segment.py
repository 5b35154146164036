"""PATCH …/documents/{document_id}/segments/{segment_id} — new text (re-embedded) or enabled."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.knowledge.api import SegmentOut, UpdateSegment
from shared.knowledge.paths import document_id as parse_document
from shared.knowledge.paths import kb_id as parse_kb
from shared.knowledge.paths import segment_id as parse_segment
from shared.knowledge.wiring import segment_service

app = http_app(function_for_module(__name__))


@app.endpoint
def update_segment(kb_id: str, document_id: str, segment_id: str,
                   body: UpdateSegment) -> Response[Envelope[SegmentOut]]:
    return app.ok(segment_service().update_segment(current_principal(), parse_kb(kb_id),
                                                   parse_document(document_id), parse_segment(segment_id), body))


handler = app.lambda_handler()
