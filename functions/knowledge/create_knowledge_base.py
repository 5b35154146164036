"""POST /api/v1/knowledge-bases — create a knowledge base (its embedding model is checked)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.knowledge.api import CreateKnowledgeBase, KnowledgeBaseOut
from shared.knowledge.wiring import knowledge_base_service

app = http_app(function_for_module(__name__))


@app.endpoint
def create_knowledge_base(body: CreateKnowledgeBase) -> Response[Envelope[KnowledgeBaseOut]]:
    return app.created(knowledge_base_service().create_knowledge_base(current_principal(), body))


handler = app.lambda_handler()
