"""Runs a workflow document in-process with the engine alone: a driver loop over ``plan()`` and
``NodeRunner.run`` (what the interpreter's step loop does on Step Functions, without the
persistence), plus small in-memory ports of our own contracts for unit tests."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.knowledge.contract import Retrieval, RetrievalQuery, RetrievedPassage
from shared.workflows.definition import WorkflowDocument
from shared.workflows.engine.graph import NodeOutcome, plan
from shared.workflows.engine.runner import (
    ChatContext,
    EnginePorts,
    NodeRunner,
    NodeRunResult,
    RunContext,
    run_outputs,
    run_pool,
)


@dataclass
class DrivenRun:
    status: str  # "succeeded" | "failed"
    outputs: dict[str, Any]
    results: dict[str, NodeRunResult]
    outcomes: dict[str, NodeOutcome]
    events: list[tuple[str, dict[str, Any]]]
    # Node ids in the order they ran.
    order: list[str] = field(default_factory=list)
    # A chatflow's answer as it streamed, piece by piece.
    streamed: list[str] = field(default_factory=list)
    # A chatflow's conversation variables at the end.
    conversation: dict[str, Any] = field(default_factory=dict)

    def chunks(self, node_id: str | None = None) -> list[str]:
        return [data["text"] for kind, data in self.events
                if kind == "text_chunk" and (node_id is None or data["node_id"] == node_id)]

    def skipped(self) -> set[str]:
        return {node_id for node_id, outcome in self.outcomes.items() if outcome.status == "skipped"}


def context_for(inputs: dict[str, Any], tenant_id: uuid.UUID | None = None, chat: ChatContext | None = None,
                ) -> RunContext:
    return RunContext(tenant_id=tenant_id or uuid.uuid4(), run_id=f"run-{uuid.uuid4().hex[:12]}",
                      workflow_id=str(uuid.uuid4()), version="draft", user_id="user-1",
                      started_at=datetime.now(UTC), inputs=inputs, chat=chat)


def drive(document: WorkflowDocument, runner: NodeRunner, inputs: dict[str, Any] | None = None, *,
          tenant_id: uuid.UUID | None = None, query: str = "", conversation: dict[str, Any] | None = None,
          ) -> DrivenRun:
    """Run every ready node until the plan is finished (a failed node fails the run). A
    chatflow's answer streams through the engine's AnswerStream into ``streamed``."""
    from shared.workflows.engine.answers import AnswerStream

    chat = ChatContext(query=query, conversation_id="conversation-1") if document.mode == "chatflow" else None
    context = context_for(inputs or {}, tenant_id, chat)
    pool = run_pool(context, document, conversation)
    events: list[tuple[str, dict[str, Any]]] = []
    run = DrivenRun("succeeded", {}, {}, {}, events)
    answers = AnswerStream(document, pool, run.streamed.append)

    def emit(kind: str, data: dict[str, Any]) -> None:
        events.append((kind, data))
        answers.event(kind, data)

    answers.started()
    while True:
        step = plan(document, run.outcomes)
        for node_id in step.skipped:
            run.outcomes[node_id] = NodeOutcome("skipped")
            answers.settled(node_id, NodeOutcome("skipped"))
        if step.finished:
            break
        for node_id in step.ready:
            result = runner.run(context, document, node_id, pool, emit)
            run.results[node_id] = result
            run.order.append(node_id)
            run.outcomes[node_id] = result.outcome
            if result.status == "failed":
                run.status = "failed"
                return run
            pool.add(node_id, result.outputs)
            answers.settled(node_id, result.outcome)
    run.outputs = run_outputs(document, run.outcomes, pool, {key: value.answer for key, value in run.results.items()})
    run.conversation = dict(pool.get_or_none(["conversation"]) or {}) if document.mode == "chatflow" else {}
    return run


# --- in-memory ports of our own contracts ----------------------------------------------------


class Unused:
    """A port a test does not expect to be called."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the test did not expect the engine to call {name}")


def ports(**given: Any) -> EnginePorts:
    return EnginePorts(models=given.get("models", Unused()), retriever=given.get("retriever", Unused()),
                       code_runner=given.get("code_runner", Unused()), fetcher=given.get("fetcher", Unused()),
                       files=given.get("files"), workflows=given.get("workflows"), tools=given.get("tools"),
                       agents=given.get("agents"))


class ScriptedRetriever:
    """A Retriever whose answers are scripted, one per call: passages, an exception to raise,
    or a callable run with the query (e.g. to sleep past a timeout)."""

    def __init__(self, *answers: list[RetrievedPassage] | BaseException | Callable[[RetrievalQuery], Any]) -> None:
        self.answers = list(answers)
        self.queries: list[RetrievalQuery] = []
        self._lock = threading.Lock()

    def retrieve(self, tenant_id: uuid.UUID, query: RetrievalQuery) -> Retrieval:
        with self._lock:
            self.queries.append(query)
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            answer = answer(query)
        return Retrieval(query=query.text, mode=query.mode or "hybrid", reranked=False, passages=list(answer))


def passage(text: str, *, score: float = 0.9, name: str = "handbook.md") -> RetrievedPassage:
    return RetrievedPassage(segment_id=uuid.uuid4(), knowledge_base_id=uuid.uuid4(), document_id=uuid.uuid4(),
                            document_name=name, position=0, page=None, text=text, content=text, score=score,
                            score_type="cosine", scores={"cosine": score}, metadata={}, tags=[])


def sleeper(seconds: float, then: list[RetrievedPassage] | None = None) -> Callable[[RetrievalQuery], Any]:
    def answer(_query: RetrievalQuery) -> list[RetrievedPassage]:
        time.sleep(seconds)
        return then or []
    return answer


def stream_of(events: list[Any]) -> Iterator[Any]:
    yield from events


def document(nodes: list[dict[str, Any]], edges: list[tuple[str, ...]]) -> WorkflowDocument:
    """A document from node dicts and edges written ``(source, target)`` or
    ``(source, handle, target)``."""
    return WorkflowDocument.model_validate({
        "nodes": nodes,
        "edges": [{"source": edge[0], "target": edge[-1], **({"source_handle": edge[1]} if len(edge) == 3 else {})}
                  for edge in edges]})
