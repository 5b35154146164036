"""A chat turn's chatflow run, in-process (docs/adr/0037-chatflows.md).

The chat function runs the turn's chatflow itself, in its own invocation, rather than starting
the interpreter's state machine and following the run's event stream: the answer's first words
then wait only for the model, not for Step Functions' transitions and the branch functions'
invocations before the model is even called (measured in the ADR). The run is recorded exactly
as the interpreter records one — the same run store (``workflow_runs`` with the chat context,
``node_runs``, large outputs in the payloads bucket), the same events on the run's stream, the
same node runner — so it is listed, read and cancelled like any run.

The loop is the interpreter's semantics without its states: plan, run the ready nodes (cheap
ones on the loop's thread, the others on up to :data:`MAX_PARALLEL_NODES` threads: parallel
branches run at once), record each, join where branches meet. The answer nodes' text streams
through an :class:`~shared.workflows.engine.answers.AnswerStream` to ``write``. Conversation
variables start from what the conversation holds; an assignment is kept on the conversation as
the assigner's node is recorded.

Stopping: ``stop`` (set by whoever ``write`` tells the turn must end) or ``cancelled()`` (polled
while nodes run) ends the run ``cancelled`` at once: a model still streaming stops at its next
chunk; another node in flight finishes unrecorded (the run store drops results of a finished run).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from shared.workflows.errors import ChatflowUnavailable
from shared.workflows.ports import RunError, RunRef

if TYPE_CHECKING:
    from shared.workflows.contract import WorkflowResolver
    from shared.workflows.engine.runner import NodeRunResult
    from shared.workflows.ports import NodeRunnerPort, RunEvents
    from shared.workflows.run_store import PostgresRunStore

logger = logging.getLogger(__name__)

MAX_PARALLEL_NODES = 10
# How often a turn waiting on running nodes checks whether it was cancelled.
POLL_S = 0.25
CANCELLED = "workflow_run_cancelled"
_EVENT_NAMES = {"node_started": "node.started", "node_finished": "node.finished", "text_chunk": "node.delta"}


@dataclass(frozen=True)
class ChatflowTurn:
    tenant_id: uuid.UUID
    workflow_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    query: str
    dialogue_count: int
    # sys.user_id: the conversation's end user.
    end_user: str
    # The member whose token started the turn (the run's created_by).
    created_by: uuid.UUID | None = None
    # The agent's variables for this end user (sys.user_variables).
    user_variables: Mapping[str, str] = field(default_factory=dict)
    # The file references of the files the user's message names (sys.files).
    files: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ChatflowOutcome:
    run_id: uuid.UUID
    status: Literal["succeeded", "failed", "cancelled"]
    # The text the answer nodes gave, as streamed.
    answer: str
    tokens: int
    error: RunError | None = None


class ChatflowTurns:
    def __init__(self, workflows: Callable[[], WorkflowResolver], store: Callable[[], PostgresRunStore],
                 events: Callable[[], RunEvents], runner: Callable[[], NodeRunnerPort],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._workflows = workflows
        self._store = store
        self._events = events
        self._runner = runner
        self._clock = clock

    def run(self, turn: ChatflowTurn, write: Callable[[str], None], *, stop: threading.Event,
            cancelled: Callable[[], bool] = lambda: False, idle: Callable[[], None] = lambda: None,
            observe: Callable[[str, dict[str, Any]], None] | None = None) -> ChatflowOutcome:
        """Run the turn's chatflow (its latest published version), streaming its answer to
        ``write``. ``idle`` is called while nodes run without text (the turn's checkpoint);
        ``observe`` is handed each event the run's stream gets, as it gets it (the turn shows
        the run's progress)."""
        runnable = self._workflows().resolve_for_run(turn.tenant_id, turn.workflow_id, None)
        if runnable.document.mode != "chatflow":
            raise ChatflowUnavailable(details={"workflow_id": str(turn.workflow_id)})
        return _Run(self, turn, runnable.document, runnable.version, write, stop, cancelled, idle, observe).run()


class _Run:
    def __init__(self, turns: ChatflowTurns, turn: ChatflowTurn, document: Any, version: int | None,
                 write: Callable[[str], None], stop: threading.Event, cancelled: Callable[[], bool],
                 idle: Callable[[], None], observe: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        from shared.workflows.engine.answers import AnswerStream
        from shared.workflows.engine.runner import ChatContext, RunContext, run_pool
        from shared.workflows.run_store import ChatRun

        self._turn = turn
        self._document = document
        self._store = turns._store()
        self._events = turns._events()
        self._runner = turns._runner()
        self._clock = turns._clock
        self._stop = stop
        self._cancelled = cancelled
        self._idle = idle
        self._observe = observe
        self.run_id = uuid.uuid4()
        self._ref = RunRef(str(turn.tenant_id), str(self.run_id))
        conversation = self._store.conversation_values(turn.tenant_id, turn.conversation_id, document)
        self._context = RunContext(
            tenant_id=turn.tenant_id, run_id=str(self.run_id), workflow_id=str(turn.workflow_id),
            version=str(version) if version is not None else "draft", user_id=turn.end_user,
            started_at=datetime.now(UTC),
            chat=ChatContext(query=turn.query, conversation_id=str(turn.conversation_id),
                             dialogue_count=turn.dialogue_count, user_variables=dict(turn.user_variables),
                             files=turn.files))
        self._store.create(self.run_id, tenant_id=turn.tenant_id, workflow_id=turn.workflow_id, version=version,
                           document=document, mode="sync", inputs={}, created_by=turn.created_by,
                           chat=ChatRun(query=turn.query, dialogue_count=turn.dialogue_count,
                                        conversation_id=turn.conversation_id, message_id=turn.message_id),
                           conversation=conversation, running=True)
        self._pool = run_pool(self._context, document, conversation)
        self._answers = AnswerStream(document, self._pool, write)
        self._outcomes: dict[str, Any] = {}
        self._results: dict[str, NodeRunResult] = {}
        self._tokens = 0

    # -- events -----------------------------------------------------------------------------------
    def _run_event(self, kind: str, data: dict[str, Any]) -> None:
        self._events.emit(self._ref, kind, data)
        if self._observe is not None:
            self._observe(kind, data)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        # The chat first (what the user waits for), then the run's stream.
        if data.get("container_id") is None or kind == "text_chunk":
            self._answers.event(kind, data)
        self._run_event(_EVENT_NAMES.get(kind, kind.replace("_", ".")), data)
        if kind == "text_chunk" and self._stop.is_set():
            from shared.workflows.engine.errors import NodeFailure

            # Raised in the node's own thread: a model's stream closes at once.
            raise NodeFailure(CANCELLED, "The chat turn was cancelled")

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> ChatflowOutcome:
        from shared.workflows.engine.graph import NodeOutcome, plan
        from shared.workflows.interpreter import mode_of

        self._run_event("workflow.started", {"run_id": self._ref.run_id,
                                                          "workflow_id": self._context.workflow_id,
                                                          "version": self._context.version})
        self._answers.started()
        running: dict[Future[NodeRunResult], str] = {}
        executor = ThreadPoolExecutor(max_workers=MAX_PARALLEL_NODES, thread_name_prefix=f"chatflow-{self.run_id}")
        try:
            while True:
                if self._stopping():
                    return self._cancel()
                states = {**self._outcomes, **{node_id: NodeOutcome("running") for node_id in running.values()}}
                planned = plan(self._document, states)
                if planned.skipped:
                    self._store.skip(self._ref, [self._document.node(node_id) for node_id in planned.skipped])
                    for node_id in planned.skipped:
                        self._outcomes[node_id] = NodeOutcome("skipped")
                        self._answers.settled(node_id, NodeOutcome("skipped"))
                    continue
                if planned.finished:
                    return self._succeed()
                inline = [node_id for node_id in planned.ready
                          if mode_of(self._document.node(node_id).type) == "inline"]
                for node_id in planned.ready:
                    node = self._document.node(node_id)
                    mode = mode_of(node.type)
                    if mode == "input":
                        return self._fail(RunError(
                            "chatflow_input_unsupported", f"Node {node_id} ({node.type}) waits for a person's input, "
                                                          "which a chat turn cannot do; remove it from the chatflow",
                            node_id=node_id))
                    if mode == "branch":
                        running[executor.submit(contextvars.copy_context().run, self._run_node, node_id)] = node_id
                if inline:
                    # One at a time on this thread: the next plan may depend on it.
                    failed = self._settle(inline[0], self._run_node(inline[0]))
                    if failed is not None:
                        return failed
                    continue
                done, _ = wait(list(running), timeout=POLL_S, return_when=FIRST_COMPLETED)
                if not done:
                    self._idle()
                for future in done:
                    node_id = running.pop(future)
                    failed = self._settle(node_id, future.result())
                    if failed is not None:
                        return failed
        finally:
            # Nodes still in flight (a cancel, a failure) finish on their own; nothing waits for them.
            executor.shutdown(wait=False, cancel_futures=True)

    def _stopping(self) -> bool:
        if self._stop.is_set():
            return True
        if self._cancelled():
            self._stop.set()
            return True
        return False

    def _run_node(self, node_id: str) -> NodeRunResult:
        return self._runner.run(self._context, self._document, node_id, self._pool, self._emit)

    def _settle(self, node_id: str, result: NodeRunResult) -> ChatflowOutcome | None:
        """Record a node's result; the run's outcome when it ended the run."""
        node = self._document.node(node_id)
        if result.status == "failed" and self._stop.is_set():
            # Stopped by the cancel (its stream closed under it): the run ends cancelled first, so
            # the node is recorded cancelled, not failed.
            outcome = self._cancel()
            self._store.record(self._ref, node, result)
            return outcome
        if not self._store.record(self._ref, node, result):
            return self._outcome("cancelled", RunError(CANCELLED, "The run was cancelled"))
        self._tokens += result.tokens
        self._results[node_id] = result
        self._outcomes[node_id] = result.outcome
        if result.status == "failed":
            error = result.error
            return self._fail(RunError(error.code if error else "node_failed",
                                       f"Node {node.id} ({node.type}) failed: "
                                       f"{error.message if error else 'no reason was recorded'}",
                                       node_id=node.id, details=dict(error.details) if error else {}))
        self._pool.add(node_id, result.outputs)
        self._answers.settled(node_id, result.outcome)
        return None

    def _succeed(self) -> ChatflowOutcome:
        from shared.workflows.engine.runner import run_outputs

        answers = {node_id: result.answer for node_id, result in self._results.items()}
        outputs = run_outputs(self._document, self._outcomes, self._pool, answers)
        if not self._store.finish(self._ref, "succeeded", outputs):
            return self._outcome("cancelled", RunError(CANCELLED, "The run was cancelled"))
        self._run_event("workflow.finished", {"status": "succeeded", "outputs": {"names": ["answer"]}})
        self._run_event("done", {"status": "succeeded"})
        if self._answers.text != outputs["answer"]:
            logger.warning("a chatflow's streamed answer differs from its answer nodes' text",
                           extra={"run_id": self._ref.run_id})
        return self._outcome("succeeded", None)

    def _fail(self, error: RunError) -> ChatflowOutcome:
        if self._store.finish(self._ref, "failed", error=error):
            data = {"code": error.code, "message": error.message, "node_id": error.node_id}
            self._run_event("workflow.finished", {"status": "failed", "error": data})
            self._run_event("error", data)
            self._run_event("done", {"status": "failed"})
        return self._outcome("failed", error)

    def _cancel(self) -> ChatflowOutcome:
        error = RunError(CANCELLED, "The chat turn was cancelled")
        if self._store.finish(self._ref, "cancelled", error=error):
            self._run_event("workflow.finished", {"status": "cancelled", "error": {
                "code": error.code, "message": error.message, "node_id": None}})
            self._run_event("done", {"status": "cancelled"})
        return self._outcome("cancelled", error)

    def _outcome(self, status: Literal["succeeded", "failed", "cancelled"], error: RunError | None) -> ChatflowOutcome:
        return ChatflowOutcome(self.run_id, status, self._answers.text, self._tokens, error)
