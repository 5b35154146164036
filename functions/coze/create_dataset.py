"""POST /coze/v1/datasets — a new dataset (a knowledge base)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze import datasets
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def create_dataset(body: datasets.CreateCozeDataset) -> Response[CozeEnvelope[datasets.CozeDatasetCreated]]:
    return app.ok(datasets.create_dataset(current_principal(), body))


handler = app.lambda_handler()
