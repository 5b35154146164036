"""Workflows: the interpreter's state machine and its task functions
(docs/adr/0029-workflow-interpreter-infrastructure.md)."""

from __future__ import annotations

from shared.catalog import Function, Invoked, StateMachineSpec, StepFunctionsTask, invoke, state_machine

_W = "workflows"
_RUN = "workflow-run"
_FETCH = "workflow-fetch"


def _task(name: str, module: str, description: str, **kwargs: object) -> Function:
    # Outside the VPC until the engine brings the run store (PostgreSQL): these functions
    # reach no data store yet, and an in-VPC function pays for ENIs it would not use.
    return Function(name, f"functions.workflows.{module}", _W, StepFunctionsTask(_RUN), in_vpc=False,
                    description=description, **kwargs)  # type: ignore[arg-type]


FUNCTIONS: tuple[Function, ...] = (
    # HTTP-request nodes go through the fetch function (boto3: the "aws" layer).
    _task("workflow-step", "step", "Runs a workflow run's ready nodes and says what comes next", timeout_s=120,
          layers=("base", "aws"), access=(invoke(_FETCH),)),
    # Long nodes (model calls, HTTP requests) run as branches, one invocation each.
    _task("workflow-branch", "branch", "Runs one node of a workflow run (a parallel branch)", memory_mb=512,
          timeout_s=900, layers=("base", "aws"), access=(invoke(_FETCH),)),
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
)

STATE_MACHINES: tuple[StateMachineSpec, ...] = (
    StateMachineSpec(_RUN, _W, "shared.workflows.state_machines:run_definition",
                     "Runs any workflow version as data: a step loop with parallel branches and human input"),
)
