"""The interpreter with this container's ports: the PostgreSQL run store (large outputs in the
payloads bucket), the engine's node runner, the run's event stream and the state machine's
executions. Tests hand other ports in with :func:`use_ports`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.workflows.interpreter import Interpreter, Limits
from shared.workflows.ports import IterationFiles, NodeRunnerPort, RunEvents, RunStore

if TYPE_CHECKING:
    from shared.workflows.chatflows import ChatflowTurns
    from shared.workflows.executions import StepFunctionsExecutions
    from shared.workflows.run_store import PostgresRunStore


@dataclass(frozen=True)
class WorkflowPorts:
    store: RunStore
    runner: NodeRunnerPort
    events: RunEvents
    limits: Limits = field(default_factory=Limits)
    # A long iteration's files (None: the payloads bucket's, shared/workflows/iterations.py).
    iterations: IterationFiles | None = None


_lock = threading.Lock()
_ports: WorkflowPorts | None = None
_interpreter: Interpreter | None = None


def use_ports(ports: WorkflowPorts | None) -> None:
    """Run the interpreter on ``ports`` (None: the production ports again)."""
    global _ports, _interpreter
    with _lock:
        _ports = ports
        _interpreter = None


def interpreter() -> Interpreter:
    global _interpreter
    with _lock:
        if _interpreter is None:
            ports = _ports or _production_ports()
            _interpreter = Interpreter(ports.store, ports.runner, ports.events, executions(), ports.limits,
                                       ports.iterations or _Iterations())
        return _interpreter


class _Payloads:
    """The payloads bucket, reached on first use: most runs never pass the inline bound, and the
    tasks that only finish runs (workflow-fail) have no grant on it."""

    def _bucket(self) -> Any:
        from shared.aws.clients import client
        from shared.config import get_settings
        from shared.workflows.run_store import S3Payloads

        bucket = get_settings().payloads_bucket
        if not bucket:
            raise RuntimeError("PAYLOADS_BUCKET is not set")
        return S3Payloads(client("s3"), bucket)

    def put(self, key: str, body: bytes) -> None:
        self._bucket().put(key, body)

    def get(self, key: str) -> bytes:
        return bytes(self._bucket().get(key))


class _Iterations:
    """A long iteration's files in the payloads bucket, reached on first use (most runs have none)."""

    def __getattr__(self, name: str) -> Any:
        from shared.aws.clients import client
        from shared.config import get_settings
        from shared.workflows.iterations import S3IterationFiles

        bucket = get_settings().payloads_bucket
        if not bucket:
            raise RuntimeError("PAYLOADS_BUCKET is not set")
        return getattr(S3IterationFiles(client("s3"), bucket), name)


class _Runner:
    """The engine's node runner, built when a node first runs (its ports load the model gateway
    and retrieval, which the tasks that never run a node do without)."""

    def run(self, *args: Any, **kwargs: Any) -> Any:
        from shared.workflows.engine.wiring import node_runner

        return node_runner().run(*args, **kwargs)

    def run_items(self, *args: Any, **kwargs: Any) -> Any:
        from shared.workflows.engine.wiring import node_runner

        return node_runner().run_items(*args, **kwargs)


def run_store() -> PostgresRunStore:
    from shared.db.database import get_database
    from shared.workflows.run_store import PostgresRunStore

    return PostgresRunStore(get_database(), _Payloads())


def run_events() -> RunEvents:
    from shared.cache.factory import get_event_stream
    from shared.config import get_settings
    from shared.workflows.run_events import StreamRunEvents

    return StreamRunEvents(get_event_stream(), get_settings().workflow_events_ttl_s)


def _production_ports() -> WorkflowPorts:
    from shared.config import get_settings

    settings = get_settings()
    return WorkflowPorts(run_store(), _Runner(), run_events(),
                         Limits(inline_items=settings.workflow_iteration_inline_items,
                                batch_items=settings.workflow_iteration_batch_items))


def executions() -> StepFunctionsExecutions | None:
    from shared.config import get_settings

    arn = get_settings().workflow_run_state_machine_arn
    if not arn:
        return None
    from shared.aws.clients import client
    from shared.workflows.executions import StepFunctionsExecutions

    return StepFunctionsExecutions(client("stepfunctions"), arn)


def chatflow_turns() -> ChatflowTurns:
    """Chat turns' chatflow runs, in the chat function's own invocation (docs/adr/0037): the run
    store, the run's events and the engine's node runner, as the interpreter has them."""
    from shared.workflows.chatflows import ChatflowTurns
    from shared.workflows.wiring_api import workflow_service

    return ChatflowTurns(workflow_service, run_store, run_events, _Runner)
