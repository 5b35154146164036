"""POST /api/v1/workflows/{workflow_id}/runs — start a run. ``sync``: 200 with the finished run
when it ends within the sync bound, else 202; ``async``: 202 at once. A 202 carries
``Location: /api/v1/workflow-runs/{id}`` to poll."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.workflows.paths import workflow_id as path_workflow_id
from shared.workflows.runs_api import StartRun, WorkflowRunOut
from shared.workflows.runs_service import is_final
from shared.workflows.wiring_api import workflow_run_service

app = http_app(function_for_module(__name__))


@app.endpoint
def create_run(workflow_id: str, body: StartRun | None = None) -> Response[Envelope[WorkflowRunOut]]:
    run = workflow_run_service().start_run(current_principal(), path_workflow_id(workflow_id), body or StartRun())
    if is_final(run):
        return app.ok(run)
    return app.ok(run, status=202, headers={"Location": f"/api/v1/workflow-runs/{run.id}"})


handler = app.lambda_handler()
