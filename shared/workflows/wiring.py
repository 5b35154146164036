"""The interpreter with this container's ports. The run store and the node executors arrive
with the workflow engine; until then a run has nothing to run on, and the step says so
rather than inventing results. Tests (and later the engine) hand the ports in with
:func:`use_ports`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from shared.workflows.executions import StepFunctionsExecutions
from shared.workflows.interpreter import Interpreter, Limits
from shared.workflows.ports import ExecutorRegistry, RunStore


@dataclass(frozen=True)
class WorkflowPorts:
    store: RunStore
    executors: ExecutorRegistry
    limits: Limits = field(default_factory=Limits)


class WorkflowsUnavailable(RuntimeError):
    """No run store is configured in this container."""


_lock = threading.Lock()
_ports: WorkflowPorts | None = None
_interpreter: Interpreter | None = None


def use_ports(ports: WorkflowPorts | None) -> None:
    global _ports, _interpreter
    with _lock:
        _ports = ports
        _interpreter = None


def interpreter() -> Interpreter:
    global _interpreter
    with _lock:
        if _interpreter is None:
            if _ports is None:
                raise WorkflowsUnavailable("no workflow run store is configured (persistence of runs and node "
                                           "results arrives with the workflow engine)")
            _interpreter = Interpreter(_ports.store, _ports.executors, _executions(), _ports.limits)
        return _interpreter


def _executions() -> StepFunctionsExecutions | None:
    from shared.config import get_settings

    arn = get_settings().workflow_run_state_machine_arn
    if not arn:
        return None
    from shared.aws.clients import client

    return StepFunctionsExecutions(client("stepfunctions"), arn)

