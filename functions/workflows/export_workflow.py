"""GET /api/v1/workflows/{workflow_id}/export?format=dify[&version=N] — the draft, or a published
version, as a Dify app DSL file (YAML; not the envelope). Errors answer in the envelope."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.validation import INT4_MAX
from shared.workflows.api import DIFY_DSL_SCHEMA, ExportFormat
from shared.workflows.paths import workflow_id as path_workflow_id
from shared.workflows.wiring_api import workflow_service

app = http_app(function_for_module(__name__))

# RFC 9512's media type for YAML.
YAML = "application/yaml"


@app.file_endpoint(YAML, "The workflow as a Dify app DSL file (YAML), attached as `<name>.yml`", DIFY_DSL_SCHEMA)
def export_workflow(workflow_id: str,
                    format_: Annotated[ExportFormat, Query(alias="format", description="The file format: `dify`, "
                                                                                     "Dify's app DSL")],
                    version: Annotated[int | None, Query(ge=1, le=INT4_MAX, description="A published version's "
                                                                                        "number; omitted: the "
                                                                                        "draft")] = None,
                    ) -> Response[str]:
    exported = workflow_service().export_workflow(current_principal(), path_workflow_id(workflow_id), format_,
                                                  version)
    return app.file(exported.content, YAML, filename=exported.filename)


handler = app.lambda_handler()
