"""POST /coze/v1/files/upload — store an uploaded file (multipart/form-data, part ``file``)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import File, UploadFile

from functions.catalog import function_for_module
from shared.facades.coze import files
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def upload_file(file: Annotated[UploadFile, File(description="The file; its filename and Content-Type are kept")]
                ) -> Response[CozeEnvelope[files.CozeFile]]:
    return app.ok(files.upload(current_principal(), file.filename, file.content_type, file.content))


handler = app.lambda_handler()
