"""GET /api/v1/knowledge-bases/{kb_id} — one knowledge base ("deleting" while it is removed)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.knowledge.api import KnowledgeBaseOut
from shared.knowledge.paths import kb_id as parse_kb
from shared.knowledge.wiring import knowledge_base_service

app = http_app(function_for_module(__name__))


@app.endpoint
def get_knowledge_base(kb_id: str) -> Response[Envelope[KnowledgeBaseOut]]:
    return app.ok(knowledge_base_service().get_knowledge_base(current_principal(), parse_kb(kb_id)))


handler = app.lambda_handler()
