"""GET /api/v1/knowledge-bases — the tenant's knowledge bases."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.knowledge.api import KnowledgeBaseOut
from shared.knowledge.repository import KB_SORTS
from shared.knowledge.wiring import knowledge_base_service

app = http_app(function_for_module(__name__))


@app.endpoint
def list_knowledge_bases(page: PageQuery = 1, limit: LimitQuery = 20,
                         sort: SortQuery = "-created_at") -> Response[ListEnvelope[KnowledgeBaseOut]]:
    listed = knowledge_base_service().list_knowledge_bases(current_principal(),
                                                           page_request(page, limit, sort, KB_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
