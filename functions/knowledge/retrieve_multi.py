"""POST /api/v1/retrieve — one search over several knowledge bases."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.knowledge.api import RetrieveMultiRequest, RetrieveResult
from shared.knowledge.retrieval import retrieval_query, retrieve_result
from shared.knowledge.wiring import retrieval_service

app = http_app(function_for_module(__name__))


@app.endpoint
def retrieve_multi(body: RetrieveMultiRequest) -> Response[Envelope[RetrieveResult]]:
    query = retrieval_query(body, body.knowledge_base_ids)
    return app.ok(retrieve_result(retrieval_service().retrieve(current_principal().tenant, query)))


handler = app.lambda_handler()
