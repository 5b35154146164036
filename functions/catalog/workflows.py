"""Workflows: the interpreter's state machine and its task functions
(docs/adr/0029-workflow-interpreter-infrastructure.md)."""

from __future__ import annotations

from shared.catalog import Function, Invoked, StateMachineSpec, StepFunctionsTask, invoke, state_machine
from shared.workflows.sandbox.ports import SANDBOX_MEMORY_MB, SANDBOX_TIMEOUT_S

_W = "workflows"
_RUN = "workflow-run"
_CODE = "workflow-code"
# The tasks that run nodes run code nodes through the sandbox function (boto3: the "aws" layer).
_RUNS_CODE = {"layers": ("base", "aws"), "access": (invoke(_CODE),)}


def _task(name: str, module: str, description: str, **kwargs: object) -> Function:
    # Outside the VPC until the engine brings the run store (PostgreSQL): these functions
    # reach no data store yet, and an in-VPC function pays for ENIs it would not use.
    return Function(name, f"functions.workflows.{module}", _W, StepFunctionsTask(_RUN), in_vpc=False,
                    description=description, **kwargs)  # type: ignore[arg-type]


FUNCTIONS: tuple[Function, ...] = (
    _task("workflow-step", "step", "Runs a workflow run's ready nodes and says what comes next", timeout_s=120,
          **_RUNS_CODE),
    # Long nodes (model calls, HTTP requests) run as branches, one invocation each.
    _task("workflow-branch", "branch", "Runs one node of a workflow run (a parallel branch)", memory_mb=512,
          timeout_s=900, **_RUNS_CODE),
    _task("workflow-await", "await_input", "Keeps the task token of a run paused for human input"),
    _task("workflow-continue", "continue_run", "Carries a workflow run on in a fresh execution",
          layers=("base", "aws"), access=(state_machine(_RUN, "start"),)),
    _task("workflow-fail", "fail_run", "Records a workflow run as failed when a task gives up"),
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
