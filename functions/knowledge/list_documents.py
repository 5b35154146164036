"""GET /api/v1/knowledge-bases/{kb_id}/documents — documents with status and progress."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.knowledge.api import DocumentOut
from shared.knowledge.paths import kb_id as parse_kb
from shared.knowledge.repository import DOCUMENT_SORTS
from shared.knowledge.types import DocumentStatus
from shared.knowledge.wiring import document_service

app = http_app(function_for_module(__name__))


@app.endpoint
def list_documents(kb_id: str, status: Annotated[DocumentStatus | None, Query()] = None, page: PageQuery = 1,
                   limit: LimitQuery = 20, sort: SortQuery = "-created_at") -> Response[ListEnvelope[DocumentOut]]:
    listed = document_service().list_documents(current_principal(), parse_kb(kb_id), status,
                                               page_request(page, limit, sort, DOCUMENT_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
