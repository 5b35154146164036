"""GET /api/v1/knowledge-bases/{kb_id}/documents/{document_id}/segments — in document order."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.knowledge.api import SegmentOut
from shared.knowledge.paths import document_id as parse_document
from shared.knowledge.paths import kb_id as parse_kb
from shared.knowledge.repository import SEGMENT_SORTS
from shared.knowledge.types import SegmentKind
from shared.knowledge.wiring import segment_service

app = http_app(function_for_module(__name__))


@app.endpoint
def list_segments(kb_id: str, document_id: str,
                  kind: Annotated[SegmentKind | None, Query()] = None,
                  enabled: Annotated[bool | None, Query()] = None, page: PageQuery = 1, limit: LimitQuery = 20,
                  sort: SortQuery = "position") -> Response[ListEnvelope[SegmentOut]]:
    listed = segment_service().list_segments(
        current_principal(), parse_kb(kb_id), parse_document(document_id), kind, enabled,
        page_request(page, limit, sort, SEGMENT_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
