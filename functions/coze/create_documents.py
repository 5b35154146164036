"""POST /coze/open_api/knowledge/document/create — add documents to a dataset (indexed
asynchronously). Coze answers the documents at the top level (``document_infos``), not in ``data``."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze import datasets
from shared.http.api import http_app
from shared.http.context import current_principal, current_request_id, response_headers
from shared.http.envelope import JSON

app = http_app(function_for_module(__name__))


@app.endpoint
def create_documents(body: datasets.CreateCozeDocuments) -> Response[datasets.CozeDocumentsCreated]:
    created = datasets.create_documents(current_principal(), body)
    request_id = current_request_id()
    return Response(200, JSON, datasets.created_body(created, request_id),
                    headers={"X-Request-Id": request_id, **app.dialect.answer_headers(request_id),
                             **response_headers()})


handler = app.lambda_handler()
