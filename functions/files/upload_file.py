"""POST /api/v1/files — store an uploaded file (multipart/form-data, part ``file``)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import File, UploadFile

from functions.catalog import function_for_module
from shared.files.api import FileOut
from shared.files.wiring import files_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def upload_file(file: Annotated[UploadFile, File(description="The file; its filename and Content-Type are kept")]
                ) -> Response[Envelope[FileOut]]:
    return app.created(files_service().upload(current_principal(), file.filename or "", file.content_type,
                                              file.content))


handler = app.lambda_handler()
