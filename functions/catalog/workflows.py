"""Workflows: definitions (drafts, published versions, Dify import and export), the
interpreter's state machine and its task functions
(docs/adr/0029-workflow-interpreter-infrastructure.md)."""

from __future__ import annotations

from shared.catalog import (
    DATABASE,
    REDIS,
    Function,
    Http,
    Invoked,
    StateMachineSpec,
    StepFunctionsTask,
    invoke,
    state_machine,
)
from shared.workflows.sandbox.ports import SANDBOX_MEMORY_MB, SANDBOX_TIMEOUT_S

_W = "workflows"
_RUN = "workflow-run"
_FETCH = "workflow-fetch"
_CODE = "workflow-code"
_WORKFLOW = "/api/v1/workflows/{workflow_id}"
# The tasks that run nodes: HTTP-request nodes go through the fetch function, code nodes through
# the sandbox function (boto3: the "aws" layer).
_RUNS_NODES = {"layers": ("base", "aws"), "access": (invoke(_FETCH), invoke(_CODE))}


def _api(name: str, module: str, method: str, path: str, permission: str, summary: str) -> Function:
    # Plain CRUD on PostgreSQL: publishing and import read the model catalog but never call a provider.
    return Function(name, f"functions.workflows.{module}", _W,
                    Http(method, path, permission=permission, summary=summary, tag="workflows"),
                    access=(DATABASE, REDIS))


def _task(name: str, module: str, description: str, **kwargs: object) -> Function:
    # Outside the VPC until the engine brings the run store (PostgreSQL): these functions
    # reach no data store yet, and an in-VPC function pays for ENIs it would not use.
    return Function(name, f"functions.workflows.{module}", _W, StepFunctionsTask(_RUN), in_vpc=False,
                    description=description, **kwargs)  # type: ignore[arg-type]


FUNCTIONS: tuple[Function, ...] = (
    _api("workflows-create", "create_workflow", "POST", "/api/v1/workflows", "workflow:write",
         "Create a workflow (a draft)"),
    _api("workflows-list", "list_workflows", "GET", "/api/v1/workflows", "workflow:read",
         "List the tenant's workflows"),
    _api("workflows-import", "import_workflow", "POST", "/api/v1/workflows/import", "workflow:write",
         "Create a workflow from a Dify app DSL file"),
    _api("workflows-get", "get_workflow", "GET", _WORKFLOW, "workflow:read",
         "One workflow with its draft and the draft's problems"),
    _api("workflows-update", "update_workflow", "PATCH", _WORKFLOW, "workflow:write", "Change a workflow's draft"),
    _api("workflows-delete", "delete_workflow", "DELETE", _WORKFLOW, "workflow:write", "Delete a workflow"),
    _api("workflows-publish", "publish_workflow", "POST", _WORKFLOW + "/publish", "workflow:write",
         "Validate the draft and publish it as the next version"),
    _api("workflows-versions-list", "list_workflow_versions", "GET", _WORKFLOW + "/versions", "workflow:read",
         "A workflow's published versions, newest first"),
    _api("workflows-versions-get", "get_workflow_version", "GET", _WORKFLOW + "/versions/{number}", "workflow:read",
         "One published version of a workflow"),
    _api("workflows-export", "export_workflow", "GET", _WORKFLOW + "/export", "workflow:read",
         "Export the draft or a published version as a Dify app DSL file"),
    _task("workflow-step", "step", "Runs a workflow run's ready nodes and says what comes next", timeout_s=120,
          **_RUNS_NODES),
    # Long nodes (model calls, HTTP requests) run as branches, one invocation each.
    _task("workflow-branch", "branch", "Runs one node of a workflow run (a parallel branch)", memory_mb=512,
          timeout_s=900, **_RUNS_NODES),
    _task("workflow-await", "await_input", "Keeps the task token of a run paused for human input"),
    _task("workflow-continue", "continue_run", "Carries a workflow run on in a fresh execution",
          layers=("base", "aws"), access=(state_machine(_RUN, "start"),)),
    _task("workflow-fail", "fail_run", "Records a workflow run as failed when a task gives up"),
    # HTTP-request nodes' requests to tenant URLs (docs/workflows-http-requests.md): outside the
    # VPC, with no access at all (its role only logs) and no secrets, so a URL that slips past
    # the egress policy still reaches nothing of the platform's. httpx2 comes with "llm". Its
    # timeout is shared.workflows.fetch.wiring.FETCH_FUNCTION_TIMEOUT_S (the callers wait that long).
    Function(_FETCH, "functions.workflows.fetch", _W, Invoked(), in_vpc=False, layers=("base", "llm"),
             memory_mb=512, timeout_s=900,
             description="Makes one HTTP request of a workflow node, outside the VPC, through the egress policy"),
    # The code sandbox (docs/adr/0032-code-sandbox.md): tenants' Python in a fresh interpreter per
    # run. Outside the VPC, no access at all (its role writes its own logs and traces only), no
    # settings beyond the directory it empties after each run; sized for the largest limits.
    Function(_CODE, "functions.workflows.run_code", _W, Invoked(), in_vpc=False, memory_mb=SANDBOX_MEMORY_MB,
             timeout_s=SANDBOX_TIMEOUT_S, description="Runs a workflow code node's Python in a fresh, limited "
             "interpreter that reaches nothing of the platform", env={"WORKFLOW_CODE_WIPE_DIR": "/tmp"}),  # noqa: S108 - Lambda's only writable directory
)

STATE_MACHINES: tuple[StateMachineSpec, ...] = (
    StateMachineSpec(_RUN, _W, "shared.workflows.state_machines:run_definition",
                     "Runs any workflow version as data: a step loop with parallel branches and human input"),
)
