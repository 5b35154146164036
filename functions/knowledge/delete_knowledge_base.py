"""DELETE /api/v1/knowledge-bases/{kb_id} — 202: removal of its documents, vectors and files
runs in the background; the knowledge base shows "deleting" until it is gone."""

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
def delete_knowledge_base(kb_id: str) -> Response[Envelope[KnowledgeBaseOut]]:
    return app.ok(knowledge_base_service().delete_knowledge_base(current_principal(), parse_kb(kb_id)), status=202)


handler = app.lambda_handler()
