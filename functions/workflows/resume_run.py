"""POST /api/v1/workflow-runs/{run_id}/resume — answer the form a paused run waits on: 202 with
the run going on; 422 ``workflow_answer_invalid`` naming each field that does not fit; 409
``workflow_run_not_paused`` when the run is not waiting at that node."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.workflows.paths import run_id as path_run_id
from shared.workflows.runs_api import ResumeRun, WorkflowRunOut
from shared.workflows.runs_service import is_final
from shared.workflows.wiring_api import workflow_run_service

app = http_app(function_for_module(__name__))


@app.endpoint
def resume_run(run_id: str, body: ResumeRun) -> Response[Envelope[WorkflowRunOut]]:
    run = workflow_run_service().resume_run(current_principal(), path_run_id(run_id), body)
    if is_final(run):
        return app.ok(run)
    return app.ok(run, status=202, headers={"Location": f"/api/v1/workflow-runs/{run.id}"})


handler = app.lambda_handler()
