"""POST /dify/v1/workflows/tasks/{task_id}/stop — stop a run of the key's workflow."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.facades.dify.api import DifyResultOut, DifyUserBody
from shared.facades.dify.service import dify_service
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def stop_workflow_task(task_id: str, body: DifyUserBody) -> Response[DifyResultOut]:
    return app.ok(dify_service().stop_run(current_principal(), task_id))


handler = app.lambda_handler()
