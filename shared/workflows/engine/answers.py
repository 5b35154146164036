"""A chatflow's answer stream: the text of its ``answer`` nodes, written to the chat in order and
as early as it is known (Dify's response coordinator, docs/workflows.md §12).

- **Order.** The answers stream one after the other in graph order (topological, ties broken by
  document order), each whole before the next begins; an answer that will not run (its branch
  was not taken) gives its turn to the next. A container (iteration, loop) holding answer nodes
  takes one turn, in its place in that order: its children's answers stream as each one runs.
- **When.** An answer starts once it is certain to run: some path leads to it from the start on
  which every branch already went its way (an if/else, a question classifier, a node with a
  failure branch decide only when they ran; any other node that will run leads on). It does not
  wait for its own node: its literal text streams at once, and each ``{{#node.field#}}`` as
  soon as that value is known — an LLM node's ``text`` chunk by chunk while the model answers, any
  other output once its node succeeded, ``sys.*`` at once. A reference to a node that was skipped
  renders empty. A conversation variable waits for every node upstream of the answer that may
  change it (an assigner naming it, or a container holding one): the answer shows the value the
  turn gives it, never a stale one.
- Values render as the answer node renders them (:func:`~.nodes.answer.answer_text`), so the
  streamed text is the answer nodes' text.

The stream is fed the engine's events (``text_chunk``) and each top-level node's outcome once it
is recorded and its outputs are in the pool (:meth:`AnswerStream.settled`); it writes through
``write``, one call at a time (events come from the nodes' threads), what one event made known
as one piece.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.workflows.definition import CONVERSATION, FAIL_BRANCH_HANDLE, SOURCE_HANDLE, WorkflowDocument
from shared.workflows.engine.graph import NodeOutcome, graph_order
from shared.workflows.engine.nodes.answer import answer_text
from shared.workflows.variables import SYS, TEMPLATE_REFERENCE, VariablePool

# Nodes whose exits are chosen when they run.
_BRANCHING = frozenset({"if_else", "question_classifier"})
# Nodes whose ``text`` streams as they produce it (``text_chunk`` events): an LLM's, and an agent
# node's answer.
STREAMED_TYPES = frozenset({"llm", "agent"})


@dataclass(frozen=True)
class Segment:
    # Literal text, or a reference (selector) to a value.
    text: str = ""
    selector: tuple[str, ...] | None = None


def segments(template: str) -> list[Segment]:
    """A template as literal text and references, in order."""
    parts: list[Segment] = []
    at = 0
    for match in TEMPLATE_REFERENCE.finditer(template):
        if match.start() > at:
            parts.append(Segment(template[at:match.start()]))
        parts.append(Segment(selector=tuple(match.group(1).split("."))))
        at = match.end()
    if at < len(template):
        parts.append(Segment(template[at:]))
    return parts


class AnswerStream:
    def __init__(self, document: WorkflowDocument, pool: VariablePool, write: Callable[[str], None]) -> None:
        from shared.workflows.configs import AnswerConfig, AssignerConfig, parse_config

        self._document = document
        self._pool = pool
        self._write = write
        self._lock = threading.RLock()
        self._nodes = {node.id: node for node in document.children(None)}
        self._incoming: dict[str, list[Any]] = {node_id: [] for node_id in self._nodes}
        self._parents: dict[str, set[str]] = {node_id: set() for node_id in self._nodes}
        for edge in document.edges:
            if edge.source in self._nodes and edge.target in self._nodes:
                self._incoming[edge.target].append(edge)
                self._parents[edge.target].add(edge.source)
        answers_in = {node.parent_id for node in document.nodes if node.type == "answer" and node.parent_id}
        # The turns: top-level answer nodes and containers holding some, in graph order.
        self._slots = [node_id for node_id in graph_order(document)
                       if node_id in self._nodes and (self._nodes[node_id].type == "answer" or node_id in answers_in)]
        self._templates: dict[str, list[Segment]] = {}
        for node_id in self._slots:
            node = self._nodes[node_id]
            if node.type == "answer":
                try:
                    config = parse_config("answer", node.config)
                except ValueError:
                    config = AnswerConfig()  # its node fails; nothing to stream
                assert isinstance(config, AnswerConfig)
                self._templates[node_id] = segments(config.answer)
        # conversation variable → the top-level nodes that may change it.
        self._assigners: dict[str, set[str]] = {}
        for node in document.nodes:
            if node.type != "assigner":
                continue
            try:
                assigner = parse_config("assigner", node.config)
            except ValueError:
                continue
            assert isinstance(assigner, AssignerConfig)
            owner = node.parent_id or node.id
            for item in assigner.items:
                if len(item.variable_selector) == 2 and item.variable_selector[0] == CONVERSATION:
                    self._assigners.setdefault(item.variable_selector[1], set()).add(owner)
        self._outcomes: dict[str, NodeOutcome] = {}
        # A top-level LLM node's text chunks so far, and how many each reference wrote.
        self._chunks: dict[str, list[str]] = {}
        self._written_chunks: dict[str, int] = {}
        # A container's answer children's texts so far, and how many were written.
        self._child_texts: dict[str, list[str]] = {}
        self._written_children: dict[str, int] = {}
        self._slot = 0
        self._segment = 0
        self._text: list[str] = []
        # What one flush found to write: written as one piece at its end.
        self._pending: list[str] = []

    @property
    def text(self) -> str:
        """Everything written so far."""
        with self._lock:
            return "".join(self._text)

    @property
    def done(self) -> bool:
        with self._lock:
            return self._slot >= len(self._slots)

    # -- what the run tells it -------------------------------------------------------------------
    def started(self) -> None:
        """The run began: literal text of an answer certain to run streams now."""
        self._flush()

    def event(self, kind: str, data: Mapping[str, Any]) -> None:
        """An engine event: text chunks of top-level LLM nodes and of containers' answer nodes."""
        if kind != "text_chunk":
            return
        node_id = str(data.get("node_id"))
        container = data.get("container_id")
        with self._lock:
            if container is not None:
                child = self._document.node(node_id)
                if child.type != "answer":
                    return
                self._child_texts.setdefault(str(container), []).append(str(data.get("text") or ""))
            elif node_id in self._nodes and self._nodes[node_id].type in STREAMED_TYPES:
                self._chunks.setdefault(node_id, []).append(str(data.get("text") or ""))
            else:
                return
            self._flush()

    def settled(self, node_id: str, outcome: NodeOutcome) -> None:
        """A top-level node ended (its outputs already in the pool) or was skipped."""
        with self._lock:
            self._outcomes[node_id] = outcome
            self._flush()

    # -- streaming --------------------------------------------------------------------------------
    def _emit(self, text: str) -> None:
        if text:
            self._text.append(text)
            self._pending.append(text)

    def _flush(self) -> None:
        with self._lock:
            try:
                self._advance()
            finally:
                if self._pending:
                    text, self._pending = "".join(self._pending), []
                    self._write(text)

    def _advance(self) -> None:
        with self._lock:
            while self._slot < len(self._slots):
                slot = self._slots[self._slot]
                outcome = self._outcomes.get(slot)
                if outcome is not None and outcome.status == "skipped":
                    self._next_slot()
                    continue
                if slot in self._templates:
                    if not self._answer(slot):
                        return
                elif not self._container(slot, outcome):
                    return
                self._next_slot()

    def _next_slot(self) -> None:
        self._slot += 1
        self._segment = 0

    def _container(self, slot: str, outcome: NodeOutcome | None) -> bool:
        texts = self._child_texts.get(slot, [])
        written = self._written_children.get(slot, 0)
        for text in texts[written:]:
            self._emit(text)
        self._written_children[slot] = len(texts)
        return outcome is not None and outcome.status != "pending" and outcome.status != "running"

    def _answer(self, slot: str) -> bool:
        """Stream the answer's segments as far as they are known; whether it is complete."""
        if not self._certain(slot, set()):
            return False
        template = self._templates[slot]
        while self._segment < len(template):
            segment = template[self._segment]
            if segment.selector is None:
                self._emit(segment.text)
            elif not self._reference(slot, segment.selector):
                return False
            self._segment += 1
        return True

    def _reference(self, slot: str, selector: tuple[str, ...]) -> bool:
        """Write the reference's value if it is known (an LLM's text: what came so far);
        whether it is complete."""
        head = selector[0]
        if head == SYS:
            self._emit(answer_text(self._pool.get_or_none(selector)))
            return True
        if head == CONVERSATION:
            changers = self._assigners.get(selector[1], set()) & self._upstream(slot)
            if any(self._open(node_id) for node_id in changers):
                return False
            self._emit(answer_text(self._pool.get_or_none(selector)))
            return True
        outcome = self._outcomes.get(head)
        node = self._nodes.get(head)
        if node is not None and node.type in STREAMED_TYPES and selector[1:] == ("text",):
            chunks = self._chunks.get(head, [])
            key = f"{slot}:{self._segment}"
            written = self._written_chunks.get(key, 0)
            self._emit("".join(chunks[written:]))
            self._written_chunks[key] = len(chunks)
            if self._open(head):
                return False
            if outcome is not None and outcome.status == "succeeded":
                # What the node answered beyond what it streamed (a default value after a failure).
                final = answer_text(self._pool.get_or_none(selector))
                streamed = "".join(chunks)
                if final.startswith(streamed):
                    self._emit(final[len(streamed):])
            return True
        if node is not None and self._open(head):
            return False
        if outcome is not None and outcome.status == "skipped":
            return True
        self._emit(answer_text(self._pool.get_or_none(selector)))
        return True

    # -- the graph --------------------------------------------------------------------------------
    def _open(self, node_id: str) -> bool:
        """Whether the node may still run (or is running)."""
        outcome = self._outcomes.get(node_id)
        return outcome is None or outcome.status in ("pending", "running")

    def _upstream(self, node_id: str) -> set[str]:
        seen: set[str] = set()
        frontier = [node_id]
        while frontier:
            for parent in self._parents.get(frontier.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    frontier.append(parent)
        return seen

    def _certain(self, node_id: str, seen: set[str]) -> bool:
        """Whether the node will run: a path leads to it from the start on which every edge
        either was taken or leaves a node that will run and has no other way out."""
        node = self._nodes[node_id]
        if node.type == "start":
            return True
        outcome = self._outcomes.get(node_id)
        if outcome is not None:
            if outcome.status == "skipped":
                return False
            if outcome.status in ("succeeded", "running"):
                return True
        seen.add(node_id)
        for edge in self._incoming[node_id]:
            source = self._outcomes.get(edge.source)
            if source is not None and source.status == "succeeded":
                if (source.handle or SOURCE_HANDLE) == edge.source_handle:
                    return True
                continue
            if source is not None and source.status != "running" and source.status != "pending":
                continue  # skipped, failed, cancelled: this way is closed
            parent = self._nodes[edge.source]
            if (parent.type in _BRANCHING or parent.error_strategy == "fail_branch"
                    or edge.source_handle == FAIL_BRANCH_HANDLE):
                continue  # it decides when it ran
            if edge.source not in seen and self._certain(edge.source, seen):
                return True
        return False
