"""POST /coze/open_api/knowledge/document/list — a dataset's documents, by page."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze import datasets
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def list_documents(body: datasets.ListCozeDocuments) -> Response[CozeEnvelope[datasets.CozeDocumentList]]:
    return app.ok(datasets.list_documents(current_principal(), body))


handler = app.lambda_handler()
