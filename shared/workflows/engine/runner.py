"""Running one node: its inputs resolved from the run's variable pool, its executor run under
the node's timeout (per attempt), retried on failure, and its error strategy applied.

- **Timeout.** Each attempt runs in a worker thread that the runner waits on for the node's
  ``timeout_s`` (the type's default when unset): Python cannot stop a thread, so past the
  deadline the runner answers ``node_timeout``, marks the attempt cancelled (a model stream
  stops reading at its next chunk; text chunks after the deadline are dropped) and abandons the
  thread (which may still finish its call while a retry runs). Ports that enforce a timeout
  themselves are also handed the budget (the sandbox's wall and CPU limits, the fetch's
  timeouts) and get :data:`PORT_GRACE_S` more, so their own, more precise error
  (``code_timeout``, ``http_request_timeout``) is what the node reports.
- **Retry.** ``retry.max_attempts`` attempts in all, ``retry.interval_ms`` apart, for failures
  only (a result is never run again; an HTTP status outside 2xx is a failure only for a node
  with a retry or an error strategy, as in Dify).
- **Error strategy** (Dify's): ``fail`` — the node failed and the run fails with it;
  ``default_value`` — the node succeeds with its declared ``default_value`` outputs plus
  ``error_message``/``error_type`` and leaves by ``source``; ``fail_branch`` — it succeeds with
  ``error_message``/``error_type`` and leaves by ``fail-branch``. The error stays recorded.
- **What is a node failure, what propagates.** Executors raise :class:`NodeFailure`; the
  ports' domain errors (:class:`~shared.errors.StratusError`: model, knowledge, quota errors)
  keep their codes. Transient infrastructure failures are not the node's and propagate to the
  caller unchanged, so the Step Functions task fails and its Retry runs it again:
  :class:`~shared.errors.Unavailable` (``sys_*``), ``psycopg.OperationalError`` (database
  unreachable, pool exhausted, statement timeout, deadlock), ``redis.exceptions.ConnectionError``
  and ``TimeoutError`` (the cache), ``botocore.exceptions.BotoCoreError`` (an AWS endpoint).
  Any other exception is a programming error: the node fails with ``node_internal_error``
  (its traceback logged with the run and node ids), never silently.

Events (``emit(type, data)``, JSON-serialisable, no secrets): ``node_started``
``{node_id, node_type, title}``; ``text_chunk`` ``{node_id, text}`` while an LLM streams;
``node_finished`` ``{node_id, node_type, status, handle, elapsed_ms, attempts, tokens, error}``.
A container's children emit the same events with ``container_id`` and ``index`` (the item or
round) added, and the container emits ``iteration.next`` / ``loop.next`` ``{node_id, index}``
before each item or round (:mod:`.containers`). Events may come from worker threads.

**Containers** (``iteration``, ``loop``) run their children through this runner, in-process:
the container's :class:`NodeRunResult` lists each child's run in ``children``
(:class:`ChildRun`: the child's node id, the item or round index, its own result), for the
run store to record beside the container's.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ValidationError

from shared.errors import StratusError, Unavailable
from shared.workflows.configs import DEFAULT_TIMEOUT_S, parse_config
from shared.workflows.definition import FAIL_BRANCH_HANDLE, SOURCE_HANDLE, Node, WorkflowDocument
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.graph import NodeOutcome, graph_order
from shared.workflows.engine.nodes import EXECUTORS
from shared.workflows.engine.nodes.base import NodeCall, NodeOutput
from shared.workflows.variables import VariablePool

if TYPE_CHECKING:
    from shared.chat.headless import AgentAnswer
    from shared.knowledge.contract import Retriever
    from shared.models.spec import Capability
    from shared.models.types import ChatEvent, ChatRequest
    from shared.tools.contract import CallContext, ToolRef, ToolResult, ToolSelection, ToolSpec
    from shared.workflows.contract import WorkflowResolver
    from shared.workflows.engine.files import FileStore
    from shared.workflows.engine.nodes.iteration import ItemResult
    from shared.workflows.fetch.ports import HttpFetcher
    from shared.workflows.sandbox.ports import CodeRunner

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], None]
# Extra seconds a port that enforces the node's timeout itself gets to report it.
PORT_GRACE_S = 2.0
_PORT_TIMED = frozenset({"code", "http_request", "tool"})


class ChatModels(Protocol):
    """What the LLM node needs of the model gateway (shared.models.gateway.ModelGateway)."""

    def stream_chat(self, tenant_id: uuid.UUID, request: ChatRequest, model: str | None = None,
                    fallback_model: str | None = None) -> tuple[Iterator[ChatEvent], Any, str]: ...

    def target(self, tenant_id: uuid.UUID, name: str | None, capability: Capability) -> Any: ...


class Tools(Protocol):
    """What tool nodes need of the tools domain (shared.tools.contract: its ToolCatalog and
    ToolExecutor, which shared.tools.runtime.ToolRuntime both is)."""

    def list(self, tenant_id: uuid.UUID, selections: Sequence[ToolSelection] | None = None, *,
             refresh: bool = False) -> list[ToolSpec]: ...

    def call(self, tenant_id: uuid.UUID, ref: ToolRef | str, arguments: Mapping[str, Any],
             timeout_s: float | None = None, *, context: CallContext | None = None) -> ToolResult: ...


class AgentAnswers(Protocol):
    """What agent nodes need: a published agent's answer to a prompt, outside any conversation
    (shared.chat.headless.AgentAnswerer)."""

    def answer(self, tenant_id: uuid.UUID, agent_id: str, prompt: str, inputs: Mapping[str, str], *,
               user: str | None, cancelled: threading.Event, on_text: Callable[[str], None]) -> AgentAnswer: ...


@dataclass(frozen=True)
class EnginePorts:
    models: ChatModels
    retriever: Retriever
    code_runner: CodeRunner
    fetcher: HttpFetcher
    # The uploads bucket, for document extractor files named by s3_key; None: not available
    # (such a file fails its node).
    files: FileStore | None = None
    # The tenant's published workflows, for sub-workflow nodes; None: not available (such a
    # node fails).
    workflows: WorkflowResolver | None = None
    # The tenant's tools (tool nodes) and agents (agent nodes); None: not available (such a
    # node fails).
    tools: Tools | None = None
    agents: AgentAnswers | None = None


@dataclass(frozen=True)
class ChatContext:
    """What a chatflow's run knows of its chat turn (``sys.query``, ``sys.conversation_id``,
    ``sys.dialogue_count``, ``sys.files``)."""

    query: str = ""
    # None: a run outside a conversation (the runs API): conversation variables start from
    # their defaults and their changes stay on the run.
    conversation_id: str | None = None
    # The turn's number in the conversation (1: the first).
    dialogue_count: int = 1
    files: tuple[Any, ...] = ()
    # The chatting agent's variables for the conversation's end user (sys.user_variables; a run
    # of the runs API has none).
    user_variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunContext:
    tenant_id: uuid.UUID
    run_id: str
    workflow_id: str
    version: str
    user_id: str | None
    started_at: datetime
    # The run's inputs, validated against the start node when the run was created: what the
    # start node answers (one output per declared variable).
    inputs: Mapping[str, Any] = field(default_factory=dict)
    # The workflows that called this one as a sub-workflow, outermost first (empty: the run's own).
    lineage: tuple[str, ...] = ()
    # A chatflow's turn; None for a workflow.
    chat: ChatContext | None = None

    def system(self) -> dict[str, Any]:
        """The ``sys`` namespace of a run in this context."""
        return {"run_id": self.run_id, "workflow_id": self.workflow_id, "version": self.version,
                "user_id": self.user_id, "tenant_id": str(self.tenant_id), "time": self.started_at.isoformat()}


def run_pool(context: RunContext, document: WorkflowDocument,
             conversation: Mapping[str, Any] | None = None) -> VariablePool:
    """A run's variable pool before any node ran: ``sys.*`` (with a chatflow's chat fields) and,
    in a chatflow, its conversation variables (``conversation``: their current values; a
    variable absent from it takes its default), which ``assigner`` nodes may change."""
    from shared.workflows.definition import CONVERSATION
    from shared.workflows.validation import empty_value

    system = context.system()
    if document.mode != "chatflow":
        return VariablePool(system)
    chat = context.chat or ChatContext()
    system.update({"query": chat.query, "conversation_id": chat.conversation_id,
                   "dialogue_count": chat.dialogue_count, "files": list(chat.files),
                   "user_variables": dict(chat.user_variables)})
    current = dict(conversation or {})
    values = {variable.name: current[variable.name] if variable.name in current else
              (variable.default if variable.default is not None else empty_value(variable.type))
              for variable in document.conversation_variables}
    types = {variable.name: variable.type for variable in document.conversation_variables}
    return VariablePool(system, {CONVERSATION: values}, writable={CONVERSATION: types})


@dataclass(frozen=True)
class NodeError:
    code: str
    message: str
    # JSON values that locate the failure (a code node's line and output, a status code...).
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"details": self.details} if self.details else {})}


@dataclass(frozen=True)
class ChildRun:
    """A run of one of a container's children: for which item (iteration) or round (loop)."""

    node_id: str
    index: int
    result: NodeRunResult

    def to_dict(self) -> dict[str, Any]:
        """The record of the child's run (JSON): node id, index, status, outputs, error, elapsed."""
        result = self.result
        return {"node_id": self.node_id, "index": self.index, "status": result.status, "handle": result.handle,
                "inputs": result.inputs, "outputs": result.outputs,
                "error": result.error.to_dict() if result.error else None, "attempts": result.attempts,
                "tokens": result.tokens, "elapsed_ms": result.elapsed_ms}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChildRun:
        """The child's run back from :meth:`to_dict` (a batch of a long iteration's items is
        recorded that way before the join assembles the node, docs/adr/0038)."""
        error = data.get("error")
        return cls(str(data["node_id"]), int(data["index"]), NodeRunResult(
            data["status"], dict(data.get("outputs") or {}), str(data.get("handle") or SOURCE_HANDLE),
            dict(data.get("inputs") or {}),
            NodeError(str(error["code"]), str(error["message"]), dict(error.get("details") or {})) if error else None,
            int(data.get("attempts") or 0), int(data.get("tokens") or 0), int(data.get("elapsed_ms") or 0)))


@dataclass(frozen=True)
class NodeRunResult:
    status: Literal["succeeded", "failed"]
    # Under default_value: the defaults plus error_message/error_type.
    outputs: dict[str, Any]
    # "source" | an if/else case id | "false" | "fail-branch"
    handle: str
    # The resolved inputs, for the record.
    inputs: dict[str, Any]
    # Set when the node failed, or failed and was handled by its error strategy.
    error: NodeError | None
    attempts: int
    # Model tokens (prompt + completion) used, over all attempts.
    tokens: int
    elapsed_ms: int
    # A container's children's runs (item or round order; within one, the order they ran).
    children: tuple[ChildRun, ...] = ()
    # The conversation variables the node changed (a chatflow's assigner, or a container
    # holding one), by name: their values after it.
    assigned: dict[str, Any] = field(default_factory=dict)
    # The text it gave the chat (a chatflow): an answer node's, or a container's answer
    # children's, in the order they ran. None: it answers nothing.
    answer: str | None = None

    @property
    def outcome(self) -> NodeOutcome:
        return NodeOutcome(self.status, self.handle if self.status == "succeeded" else None)


@dataclass
class _Attempt:
    inputs: dict[str, Any] = field(default_factory=dict)
    output: NodeOutput | None = None
    error: NodeError | None = None
    tokens: int = 0
    children: list[ChildRun] = field(default_factory=list)


@dataclass(frozen=True)
class ItemsRun:
    """A batch of an iteration's items run outside its node (:meth:`NodeRunner.run_items`)."""

    results: list[ItemResult]
    # The children's runs, item order.
    children: tuple[ChildRun, ...]
    tokens: int


def _discard(_type: str, _data: dict[str, Any]) -> None:
    return None


def finished_event(node: Node, result: NodeRunResult) -> dict[str, Any]:
    """The ``node_finished`` event of a settled node: how it ended, what it cost, its outputs cut
    to a preview (shared/workflows/run_event_data.py) and when it ended."""
    from shared.workflows.run_event_data import summarize_outputs

    outputs, truncated = summarize_outputs(result.outputs)
    return {"node_id": node.id, "node_type": node.type, "status": result.status, "handle": result.handle,
            "elapsed_ms": result.elapsed_ms, "attempts": result.attempts, "tokens": result.tokens,
            "error": result.error.to_dict() if result.error else None, "outputs": outputs,
            "outputs_truncated": truncated, "finished_at": datetime.now(UTC).isoformat()}


def infrastructure_errors() -> tuple[type[BaseException], ...]:
    """Transient failures of what the engine runs on, which ``NodeRunner.run`` lets through
    (the step is retried; the node is not failed): for a task handler to tell them apart."""
    import botocore.exceptions
    import psycopg
    import redis.exceptions

    return (Unavailable, psycopg.OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
            botocore.exceptions.BotoCoreError)


class NodeRunner:
    def __init__(self, ports: EnginePorts, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ports = ports
        self._sleep = sleep
        self._clock = clock

    def run(self, context: RunContext, document: WorkflowDocument, node_id: str, pool: VariablePool,
            emit: Emit | None = None) -> NodeRunResult:
        """Run ``node_id`` against ``pool`` (the outputs of the nodes that ran before it). Raises
        only what is not the node's failure: transient infrastructure errors (see the module)."""
        from shared.workflows.definition import CONVERSATION

        node = document.node(node_id)
        emit = emit or _discard
        assigned: dict[str, Any] = {}
        assigning = threading.Lock()

        def observe(selector: Sequence[str], value: Any) -> None:
            if len(selector) == 2 and selector[0] == CONVERSATION:
                with assigning:
                    assigned[selector[1]] = value

        # Reads go through to ``pool``; conversation variables changed by the node (or its
        # children) are noted for the record.
        pool = pool.layer({}, observer=observe) if document.mode == "chatflow" else pool
        emit("node_started", {"node_id": node.id, "node_type": node.type, "title": node.title})
        started = self._clock()
        attempts, tokens = 0, 0
        try:
            config = parse_config(node.type, node.config)
        except ValidationError as exc:
            attempts = 1
            attempt = _Attempt(error=NodeError("node_config_invalid", f"The node's configuration is invalid: "
                                               f"{_first_problem(exc)}; fix it in the workflow and publish again"))
        else:
            timeout_s = float(node.timeout_s or DEFAULT_TIMEOUT_S[node.type])
            while True:
                attempts += 1
                attempt = self._attempt(context, document, node, config, pool, timeout_s, emit)
                tokens += attempt.tokens
                if attempt.error is None or attempts >= node.retry.max_attempts:
                    break
                logger.info("workflow node attempt failed; retrying",
                            extra={"run_id": context.run_id, "node_id": node.id, "attempt": attempts,
                                   "error_code": attempt.error.code})
                self._sleep(node.retry.interval_ms / 1000)
        result = _settle(node, attempt, attempts, tokens, int((self._clock() - started) * 1000))
        if document.mode == "chatflow":
            with assigning:
                result = replace(result, assigned=dict(assigned), answer=answered(document, node, result))
        emit("node_finished", finished_event(node, result))
        return result

    def run_items(self, context: RunContext, document: WorkflowDocument, node_id: str, pool: VariablePool,
                  indexed: Sequence[tuple[int, Any]], emit: Emit | None = None) -> ItemsRun:
        """Run some of iteration ``node_id``'s items, ``(index, item)`` in order, as its
        executor runs each (the same sub-graph, events and child records): one batch of a long
        iteration's Distributed Map (docs/adr/0038). Under ``terminated`` it stops after the
        first item that fails. The node itself is settled later, by the join over every batch
        (:func:`settled`). Raises what :meth:`run` lets through (transient infrastructure errors)."""
        from shared.workflows.configs import IterationConfig
        from shared.workflows.engine.nodes.iteration import run_in_order

        node = document.node(node_id)
        config = IterationConfig.model_validate(node.config)
        lock = threading.Lock()
        children: list[ChildRun] = []
        spent = [0]

        def spend(tokens: int) -> None:
            with lock:
                spent[0] += tokens

        def record(child: ChildRun) -> None:
            with lock:
                children.append(child)

        call = NodeCall(context, node, config, pool, self._ports, float(node.timeout_s or DEFAULT_TIMEOUT_S[node.type]),
                        threading.Event(), spend=spend, document=document, runner=self, emit=emit or _discard,
                        record=record)
        results = run_in_order(call, list(indexed))
        return ItemsRun(results, tuple(sorted(children, key=lambda child: child.index)), spent[0])

    def _attempt(self, context: RunContext, document: WorkflowDocument, node: Node, config: BaseModel,
                 pool: VariablePool, timeout_s: float, emit: Emit) -> _Attempt:
        executor = EXECUTORS[node.type]
        cancelled = threading.Event()
        lock = threading.Lock()

        def chunk(text: str) -> None:
            with lock:
                if not cancelled.is_set():
                    emit("text_chunk", {"node_id": node.id, "text": text})

        attempt = _Attempt()

        def spend(tokens: int) -> None:
            with lock:
                attempt.tokens += tokens

        def forward(kind: str, data: dict[str, Any]) -> None:
            with lock:
                if not cancelled.is_set():
                    emit(kind, data)

        def record(child: ChildRun) -> None:
            with lock:
                attempt.children.append(child)

        call = NodeCall(context, node, config, pool, self._ports, timeout_s, cancelled, chunk, spend,
                        document=document, runner=self, emit=forward, record=record)
        raised: list[BaseException] = []

        def work() -> None:
            try:
                attempt.inputs = executor.resolve(call)
                attempt.output = executor.execute(call, attempt.inputs)
            except BaseException as exc:  # handed to the runner's thread, as it is
                raised.append(exc)

        worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True,
                                  name=f"workflow-node-{node.id}")
        worker.start()
        worker.join(timeout_s + (PORT_GRACE_S if node.type in _PORT_TIMED else 0.0))
        if worker.is_alive():
            with lock:
                cancelled.set()
            logger.warning("workflow node attempt timed out; its thread is abandoned",
                           extra={"run_id": context.run_id, "node_id": node.id, "timeout_s": timeout_s})
            return _Attempt(inputs=attempt.inputs, tokens=attempt.tokens, children=list(attempt.children),
                            error=NodeError(
                "node_timeout", f"The {node.type} node did not finish within its timeout of {timeout_s:g} s; "
                                f"raise the node's timeout_s or make it do less"))
        if raised:
            attempt.output = None
            attempt.error = _node_error(raised[0], context, node)
        return attempt


def _node_error(exc: BaseException, context: RunContext, node: Node) -> NodeError:
    """The node's error for what its executor raised; re-raises what is not the node's."""
    if isinstance(exc, NodeFailure):
        return NodeError(exc.code, exc.message, dict(exc.details))
    if not isinstance(exc, Exception) or isinstance(exc, infrastructure_errors()):
        raise exc
    if isinstance(exc, StratusError):
        return NodeError(exc.code, exc.message, dict(exc.details))
    logger.error("workflow node failed with an unexpected error", exc_info=exc,
                 extra={"run_id": context.run_id, "tenant_id": str(context.tenant_id), "node_id": node.id,
                        "node_type": node.type})
    return NodeError("node_internal_error",
                     f"The {node.type} node failed unexpectedly ({type(exc).__name__}); this is a platform error, "
                     f"logged with run {context.run_id}: retry the run, and report it if it persists")


def _settle(node: Node, attempt: _Attempt, attempts: int, tokens: int, elapsed_ms: int) -> NodeRunResult:
    """The node's result once its error strategy is applied."""
    error = attempt.error
    children = tuple(sorted(attempt.children, key=lambda child: child.index))
    if error is None and attempt.output is not None:
        return NodeRunResult("succeeded", dict(attempt.output.outputs), attempt.output.handle, attempt.inputs, None,
                             attempts, tokens, elapsed_ms, children)
    error = error or NodeError("node_internal_error", "The node produced no result")
    error_outputs = {"error_message": error.message, "error_type": error.code}
    if node.error_strategy == "default_value":
        return NodeRunResult("succeeded", {**node.default_value, **error_outputs}, SOURCE_HANDLE, attempt.inputs,
                             error, attempts, tokens, elapsed_ms, children)
    if node.error_strategy == "fail_branch":
        return NodeRunResult("succeeded", error_outputs, FAIL_BRANCH_HANDLE, attempt.inputs, error, attempts, tokens,
                             elapsed_ms, children)
    return NodeRunResult("failed", {}, SOURCE_HANDLE, attempt.inputs, error, attempts, tokens, elapsed_ms, children)


def settled(node: Node, inputs: dict[str, Any], outcome: NodeOutput | NodeError, *, attempts: int, tokens: int,
            elapsed_ms: int, children: Sequence[ChildRun] = ()) -> NodeRunResult:
    """A node's result from what was computed outside :meth:`NodeRunner.run` (a long
    iteration's join), its error strategy applied as ``run`` applies it."""
    attempt = _Attempt(inputs=inputs, children=list(children))
    if isinstance(outcome, NodeError):
        attempt.error = outcome
    else:
        attempt.output = outcome
    return _settle(node, attempt, attempts, tokens, elapsed_ms)


def answered(document: WorkflowDocument, node: Node, result: NodeRunResult) -> str | None:
    """The text a node gave the chat: an answer node's, or its answer children's in the order
    they ran (a container); None when it holds no answer node."""
    if node.type == "answer":
        return str(result.outputs.get("answer") or "") if result.status == "succeeded" else None
    answers = {child.id for child in document.children(node.id) if child.type == "answer"}
    if not answers:
        return None
    return "".join(str(child.result.outputs.get("answer") or "") for child in result.children
                   if child.node_id in answers and child.result.status == "succeeded")


def chat_answer(document: WorkflowDocument, outcomes: Mapping[str, NodeOutcome],
                answers: Mapping[str, str | None]) -> str:
    """A chatflow run's answer: the text its top-level answer nodes (and containers holding
    some) gave, in graph order, which is the order the chat streams them in."""
    parts = []
    for node_id in graph_order(document):
        outcome = outcomes.get(node_id)
        if outcome is not None and outcome.status == "succeeded" and document.node(node_id).parent_id is None:
            parts.append(answers.get(node_id) or "")
    return "".join(parts)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ())) or "config"
    return f"{where}: {error.get('msg', '')}"


def run_outputs(document: WorkflowDocument, outcomes: Mapping[str, NodeOutcome], pool: VariablePool,
                answers: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """The run's outputs: the outputs of the end nodes that ran, merged in graph order (a later
    end node's output of the same name wins, as the last answer does in Dify). A chatflow's:
    ``answer``, the text of its answer nodes (``answers``: each node's, :func:`chat_answer`)."""
    if document.mode == "chatflow":
        return {"answer": chat_answer(document, outcomes, answers or {})}
    produced = dict(pool.iter_outputs())
    merged: dict[str, Any] = {}
    for node_id in graph_order(document):
        outcome = outcomes.get(node_id)
        if document.node(node_id).type == "end" and outcome is not None and outcome.status == "succeeded":
            merged.update(produced.get(node_id) or {})
    return merged
