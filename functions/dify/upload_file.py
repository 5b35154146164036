"""POST /dify/v1/files/upload — store a file for the key's app (multipart: part ``file``, field ``user``)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import File, Form, UploadFile

from functions.catalog import function_for_module
from shared.facades.dify.api import DifyUploadedFile
from shared.facades.dify.service import dify_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def upload_file(file: Annotated[UploadFile, File(description="The file; its filename and Content-Type are kept")],
                user: Annotated[str | None, Form(max_length=255, description="The end user (accepted; a file "
                                                                            "belongs to the tenant)")] = None,
                ) -> Response[DifyUploadedFile]:
    return app.created(dify_service().upload(current_principal(), file.filename or "file", file.content_type,
                                             file.content))


handler = app.lambda_handler()
