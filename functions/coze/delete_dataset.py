"""DELETE /coze/v1/datasets/{dataset_id} — delete a dataset with its documents (asynchronous)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.coze import datasets
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def delete_dataset(dataset_id: str) -> Response[CozeEnvelope[datasets.CozeEmpty]]:
    return app.ok(datasets.delete_dataset(current_principal(), dataset_id))


handler = app.lambda_handler()
