"""POST /api/v1/knowledge-bases/{kb_id}/retrieve — semantic, full-text or hybrid search."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.knowledge.api import RetrieveRequest, RetrieveResult
from shared.knowledge.paths import kb_id as parse_kb
from shared.knowledge.retrieval import retrieval_query, retrieve_result
from shared.knowledge.wiring import retrieval_service

app = http_app(function_for_module(__name__))


@app.endpoint
def retrieve(kb_id: str, body: RetrieveRequest) -> Response[Envelope[RetrieveResult]]:
    query = retrieval_query(body, [parse_kb(kb_id)])
    return app.ok(retrieve_result(retrieval_service().retrieve(current_principal().tenant, query)))


handler = app.lambda_handler()
