"""Workflows: the interpreter's state machine and its task functions
(docs/adr/0029-workflow-interpreter-infrastructure.md)."""

from __future__ import annotations

from shared.catalog import Function, StateMachineSpec, StepFunctionsTask, state_machine

_W = "workflows"
_RUN = "workflow-run"


def _task(name: str, module: str, description: str, **kwargs: object) -> Function:
    # Outside the VPC until the engine brings the run store (PostgreSQL): these functions
    # reach no data store yet, and an in-VPC function pays for ENIs it would not use.
    return Function(name, f"functions.workflows.{module}", _W, StepFunctionsTask(_RUN), in_vpc=False,
                    description=description, **kwargs)  # type: ignore[arg-type]


FUNCTIONS: tuple[Function, ...] = (
    _task("workflow-step", "step", "Runs a workflow run's ready nodes and says what comes next", timeout_s=120),
    # Long nodes (model calls, HTTP requests) run as branches, one invocation each.
    _task("workflow-branch", "branch", "Runs one node of a workflow run (a parallel branch)", memory_mb=512,
          timeout_s=900),
    _task("workflow-await", "await_input", "Keeps the task token of a run paused for human input"),
    _task("workflow-continue", "continue_run", "Carries a workflow run on in a fresh execution",
          layers=("base", "aws"), access=(state_machine(_RUN, "start"),)),
    _task("workflow-fail", "fail_run", "Records a workflow run as failed when a task gives up"),
)

STATE_MACHINES: tuple[StateMachineSpec, ...] = (
    StateMachineSpec(_RUN, _W, "shared.workflows.state_machines:run_definition",
                     "Runs any workflow version as data: a step loop with parallel branches and human input"),
)
