"""GET /coze/v1/files/retrieve — an uploaded file, as Coze's ``File``."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.facades.coze import files
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def retrieve_file(file_id: Annotated[str, Query(min_length=1, max_length=100, description="The file's id")]
                  ) -> Response[CozeEnvelope[files.CozeFile]]:
    return app.ok(files.retrieve(current_principal(), file_id))


handler = app.lambda_handler()
