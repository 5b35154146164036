"""GET /api/v1/files/{file_id} — an uploaded file's record."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.files.api import FileOut
from shared.files.paths import file_id as parse_file
from shared.files.wiring import files_service
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope

app = http_app(function_for_module(__name__))


@app.endpoint
def get_file(file_id: str) -> Response[Envelope[FileOut]]:
    return app.ok(files_service().get(current_principal(), parse_file(file_id)))


handler = app.lambda_handler()
