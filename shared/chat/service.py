"""A chat turn: the question and its answer are stored first (answer ``running``), then the
answer is generated — history, optional query rewrite, retrieval, a prompt within the model's
context window, the streamed completion — while every event is appended to the answer's event
stream (replayable by id) and handed to the live connection, if any.

The answer always ends in one final write (completed, cancelled or failed) fenced on
``status = 'running'``: whichever of the generator and the reaper gets there first wins, and
a client going away changes nothing (the generator does not depend on the connection).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.agents.config import render_system_prompt
from shared.agents.paths import agent_ref
from shared.auth.principal import Principal
from shared.cache.ports import EventStream, KeyValueStore, StreamEvent
from shared.chat import prompt as prompts
from shared.chat.api import CancelOut, ChatBody
from shared.chat.events import cancel_key, stream_key, valid_event_id
from shared.chat.metrics import record_turn
from shared.conversations import repository as repo
from shared.conversations.access import chat_agent_for, check_agent_allowed, end_user_of, visible_conversation
from shared.conversations.api import MessageOut
from shared.conversations.errors import (
    AgentModeUnavailable,
    ChatEventsExpired,
    ConversationAgentMismatch,
    ConversationBusy,
    MessageNotFound,
)
from shared.conversations.views import message_out
from shared.db.database import Database
from shared.errors import Conflict, StratusError, ValidationFailed
from shared.ids import new_id
from shared.models.spec import Capability
from shared.models.types import ChatRequest, StreamEnd, TextDelta

if TYPE_CHECKING:
    from shared.agents.service import AgentService, ChatAgent
    from shared.knowledge.retrieval import RetrievalService
    from shared.models.gateway import ModelGateway
    from shared.models.resolver import ModelResolver

logger = logging.getLogger(__name__)

CANCEL_TTL_S = 3600
STREAM_MIN_LEN = 10_000
STREAM_EXTRA_EVENTS = 100
TIMED_OUT = "chat_turn_timed_out"
Emit = Callable[[StreamEvent], None]


@dataclass(frozen=True)
class ChatSettings:
    checkpoint_s: float = 2.0
    events_ttl_s: int = 86_400
    stuck_after_s: int = 300


@dataclass
class ChatDeps:
    db: Database
    agents: Callable[[], AgentService]
    resolver: Callable[[], ModelResolver]
    gateway: Callable[[], ModelGateway]
    retrieval: Callable[[], RetrievalService]
    kv: Callable[[], KeyValueStore]
    events: Callable[[], EventStream]
    count_tokens: Callable[[str], int]
    settings: ChatSettings
    clock: Callable[[], float] = time.perf_counter


@dataclass
class Turn:
    """A started turn: what ``run`` needs, all read before the answer streams."""

    principal: Principal
    tenant_id: uuid.UUID
    conversation_id: uuid.UUID
    question_id: uuid.UUID
    answer: dict[str, Any]
    chat_agent: ChatAgent
    system_prompt: str
    question: str
    context_tokens: int
    output_tokens: int
    created_conversation: bool
    started: float


class TurnFailed(StratusError):
    """A non-streaming turn that ended failed: the answer's own error, with its ids."""

    def __init__(self, error: StratusError, message: MessageOut) -> None:
        super().__init__(error.message, code=error.code,
                         details={**error.details, "message_id": str(message.id),
                                  "conversation_id": str(message.conversation_id)},
                         headers=error.headers)
        self.status = error.status


class ChatService:
    def __init__(self, deps: ChatDeps) -> None:
        self._d = deps
        self._db = deps.db

    # Starting a turn ---------------------------------------------------------------------------
    def start(self, principal: Principal, body: ChatBody) -> Turn:
        """Everything that can refuse the turn with an HTTP error happens here, before any
        event: the conversation, the agent, the inputs, the model, the question's size."""
        started = self._d.clock()
        tenant_id = principal.tenant
        end_user = end_user_of(principal, body.user)
        ref = agent_ref(body.agent_id)
        if isinstance(ref, uuid.UUID):
            # Before the conversation is read: nothing about another agent is revealed.
            check_agent_allowed(principal, ref)
        conversation = None
        if body.conversation_id is not None:
            with self._db.transaction(tenant_id) as conn:
                conversation = visible_conversation(conn, principal, body.conversation_id, body.user)
        draft = conversation["draft"] if conversation is not None else body.draft
        chat_agent = chat_agent_for(principal, self._d.agents(), body.agent_id, draft)
        agent = chat_agent.agent
        if conversation is not None and conversation["agent_id"] != agent.id:
            raise ConversationAgentMismatch(details={"conversation_id": str(conversation["id"]),
                                                     "agent_id": str(conversation["agent_id"])})
        if chat_agent.config.mode != "quick-answer":
            raise AgentModeUnavailable(details={"mode": chat_agent.config.mode})
        inputs = {**(conversation["inputs"] if conversation is not None else {}), **body.inputs}
        system_prompt = render_system_prompt(chat_agent.config, inputs)
        context_tokens, output_tokens = self._model_limits(tenant_id, chat_agent)
        ok, needed, available = prompts.fits(system_prompt=system_prompt, question=body.message,
                                             context_tokens=context_tokens, output_tokens=output_tokens,
                                             count=self._d.count_tokens)
        if not ok:
            raise ValidationFailed("The message and the system prompt do not fit the model's context window",
                                   code="chat_message_too_long",
                                   details={"fields": [{"field": "message", "type": "too_long",
                                                        "message": f"needs about {needed} tokens; "
                                                                   f"the model takes {available}"}]})

        created = conversation is None
        question_id, answer_id = new_id(), new_id()
        with self._db.transaction(tenant_id) as conn:
            if conversation is None:
                conversation = repo.insert_conversation(
                    conn, conversation_id=new_id(), tenant_id=tenant_id, agent_id=agent.id, end_user=end_user,
                    name="", draft=body.draft, inputs=body.inputs, created_by=principal.user_id)
            else:
                # Again, locked (deleted meanwhile: 404).
                conversation = visible_conversation(conn, principal, conversation["id"], body.user, lock=True)
                if repo.running_answer(conn, tenant_id, conversation["id"]) is not None:
                    raise ConversationBusy(details={"conversation_id": str(conversation["id"])})
            _, answer = repo.insert_turn(conn, conversation, question=body.message, user_message_id=question_id,
                                         answer_id=answer_id, agent_version=chat_agent.version)
        return Turn(principal=principal, tenant_id=tenant_id, conversation_id=conversation["id"],
                    question_id=question_id, answer=answer, chat_agent=chat_agent, system_prompt=system_prompt,
                    question=body.message, context_tokens=context_tokens, output_tokens=output_tokens,
                    created_conversation=created, started=started)

    def _model_limits(self, tenant_id: uuid.UUID, chat_agent: ChatAgent) -> tuple[int, int]:
        resolver = self._d.resolver()
        config = chat_agent.config
        name = config.model.name or resolver.default_name(tenant_id, Capability.CHAT)
        if not name:
            from shared.models.errors import ModelNotConfigured

            raise ModelNotConfigured("No chat model is configured: set the agent's model or a tenant default "
                                     "(PUT /api/v1/models/defaults)", details={"capability": "chat"})
        specs = [resolver.get(tenant_id, name, Capability.CHAT).spec]
        fallback = config.fallback_model or resolver.fallback_name(tenant_id)
        if fallback and fallback.lower() != name.lower():
            try:
                specs.append(resolver.get(tenant_id, fallback, Capability.CHAT).spec)
            except StratusError:
                # A fallback that cannot be resolved is the gateway's to report if it is needed.
                logger.warning("the fallback chat model cannot be resolved", extra={"model": fallback})
        # The prompt must fit whichever model answers: size it for the smaller of the two.
        context = min(spec.max_context_tokens for spec in specs)
        output = min(spec.max_output_tokens for spec in specs)
        if config.model.max_tokens:
            output = min(output, config.model.max_tokens)
        # A model declaring an output limit near its context would leave no room for the prompt.
        return context, min(output, context // 2)

    # Running a turn ----------------------------------------------------------------------------
    def run(self, turn: Turn, emit: Emit | None = None) -> tuple[MessageOut, StratusError | None]:
        """Generate the answer. Never raises for a failure of the turn itself: that is stored
        on the answer and sent as an ``error`` event. Returns the final answer and its error."""
        runner = _TurnRunner(self._d, turn, emit)
        return runner.run()

    # Cancel, replay, reaper ----------------------------------------------------------------------
    def _answer_for(self, principal: Principal, message_id: uuid.UUID, user: str | None) -> dict[str, Any]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            row = repo.get_message(conn, tenant_id, message_id)
        if row is None or row["role"] != "assistant" or row["end_user"] != end_user_of(principal, user):
            raise MessageNotFound(details={"message_id": str(message_id)})
        try:
            check_agent_allowed(principal, row["agent_id"])
        except StratusError:
            raise MessageNotFound(details={"message_id": str(message_id)}) from None
        return row

    def cancel(self, principal: Principal, message_id: uuid.UUID, user: str | None) -> CancelOut:
        row = self._answer_for(principal, message_id, user)
        if row["status"] != "running":
            raise Conflict("The answer has already ended", code="chat_turn_finished",
                           details={"message_id": str(message_id), "status": row["status"]})
        self._d.kv().set(cancel_key(message_id), "1", ttl_s=CANCEL_TTL_S)
        return CancelOut(message_id=message_id, status="running", cancel_requested=True)

    def replay(self, principal: Principal, message_id: uuid.UUID, user: str | None,
               after_id: str | None, block_ms: int) -> Iterator[list[StreamEvent]]:
        """Batches of the answer's events after ``after_id``, waiting up to ``block_ms`` for
        each (an empty batch: time for a heartbeat), until ``done``."""
        if after_id is not None and not valid_event_id(after_id):
            raise ValidationFailed("Last-Event-ID is not an event id of this stream", code="chat_event_id_invalid",
                                   details={"fields": [{"field": "headers.last-event-id", "type": "value_error",
                                                        "message": "expected <milliseconds>-<sequence>"}]})
        row = self._answer_for(principal, message_id, user)
        events = self._d.events()
        key = stream_key(message_id)
        first = events.read(key, after_id, count=100, block_ms=0)
        if not first and row["status"] != "running":
            if after_id is None:
                raise ChatEventsExpired(details={"message_id": str(message_id), "status": row["status"]})
            # Ended, and nothing after the client's position: close it for good (an SSE client
            # would otherwise reconnect with the same id for ever).
            first = [self._close(key, row["status"])]
        return self._follow(principal.tenant, message_id, key, after_id, first, block_ms)

    def _close(self, key: str, status: str) -> StreamEvent:
        data = {"status": status}
        return StreamEvent(self._d.events().append(key, "done", data, ttl_s=self._d.settings.events_ttl_s),
                           "done", data)

    def _follow(self, tenant_id: uuid.UUID, message_id: uuid.UUID, key: str, after_id: str | None,
                first: list[StreamEvent], block_ms: int) -> Iterator[list[StreamEvent]]:
        events = self._d.events()
        batch = first
        last = after_id
        idle_checks = 0
        while True:
            if batch:
                yield batch
                last = batch[-1].id
                if any(e.type == "done" for e in batch):
                    return
                idle_checks = 0
            else:
                yield []
                idle_checks += 1
                # A stream that stays silent while its answer has ended: the writer died before
                # its last event and nobody closed it (or its events expired).
                if idle_checks % 3 == 0:
                    status = self._status(tenant_id, message_id)
                    if status != "running":
                        tail = events.read(key, last, count=100, block_ms=0)
                        yield tail if any(e.type == "done" for e in tail) else [*tail, self._close(key, status)]
                        return
            batch = events.read(key, last, count=100, block_ms=block_ms)

    def _status(self, tenant_id: uuid.UUID, message_id: uuid.UUID) -> str:
        with self._db.transaction(tenant_id) as conn:
            row = repo.get_message(conn, tenant_id, message_id, include_deleted=True)
        return row["status"] if row is not None else "failed"

    def reap(self, limit: int = 100) -> int:
        """Fail answers stuck in ``running`` (their generator died: a crash, a timeout) and close
        their event streams so followers stop waiting."""
        with self._db.transaction() as conn:
            stuck = repo.stuck_turns(conn, self._d.settings.stuck_after_s, limit)
        reaped = 0
        for item in stuck:
            message = (f"The answer stopped without finishing (no progress for "
                       f"{self._d.settings.stuck_after_s} s)")
            with self._db.transaction(item["tenant_id"]) as conn:
                row = repo.finish_message(conn, item["tenant_id"], item["message_id"],
                                          {"status": "failed", "error_code": TIMED_OUT, "error": message})
            if row is None:  # it finished meanwhile
                continue
            reaped += 1
            events = self._d.events()
            key = stream_key(item["message_id"])
            ttl = self._d.settings.events_ttl_s
            events.append(key, "error", {"code": TIMED_OUT, "message": message}, ttl_s=ttl)
            events.append(key, "done", {"status": "failed"}, ttl_s=ttl)
            logger.warning("reaped a stuck chat turn", extra={"message_id": str(item["message_id"]),
                                                                "tenant_id": str(item["tenant_id"])})
        return reaped


class _Cancelled(Exception):
    pass


class _TurnRunner:
    def __init__(self, deps: ChatDeps, turn: Turn, emit: Emit | None) -> None:
        self._d = deps
        self._t = turn
        self._emit = emit
        self._events = deps.events()
        self._kv = deps.kv()
        self._key = stream_key(turn.answer["id"])
        self._cancel_key = cancel_key(turn.answer["id"])
        self._text: list[str] = []
        self._last_checkpoint = deps.clock()
        self._emit_failed = False
        # What the answer keeps however it ends (references, context report, model).
        self._common: dict[str, Any] = {}
        self._latency: dict[str, Any] = {}
        # A delta is about a token: the stream must hold the longest answer whole, or a replay
        # from the start would begin mid-answer.
        self._maxlen = max(STREAM_MIN_LEN, turn.output_tokens + STREAM_EXTRA_EVENTS)

    # Events --------------------------------------------------------------------------------------
    def publish(self, event_type: str, data: dict[str, Any]) -> None:
        event_id = self._events.append(self._key, event_type, data, ttl_s=self._d.settings.events_ttl_s,
                                       maxlen=self._maxlen)
        if self._emit is not None and not self._emit_failed:
            try:
                self._emit(StreamEvent(event_id, event_type, data))
            except RuntimeError:
                # The connection's loop is gone (client and server shut down): the stream
                # still holds every event, the answer still gets written.
                self._emit_failed = True

    def _cancel_requested(self) -> bool:
        return self._kv.get(self._cancel_key) is not None

    def _ms(self, since: float) -> int:
        return int((self._d.clock() - since) * 1000)

    # The turn ------------------------------------------------------------------------------------
    def run(self) -> tuple[MessageOut, StratusError | None]:
        try:
            return self._run()
        except Exception:
            # The turn's own bookkeeping failed (the event stream or the database is down): the
            # live client still gets an end, straight from here; the answer is left to the
            # reaper, and the failure to the caller (logs, the non-streaming request).
            if self._emit is not None and not self._emit_failed:
                with contextlib.suppress(RuntimeError):
                    self._emit(StreamEvent("", "error", {"code": StratusError.code,
                                                         "message": StratusError.default_message}))
                    self._emit(StreamEvent("", "done", {"status": "failed"}))
            raise

    def _run(self) -> tuple[MessageOut, StratusError | None]:
        t = self._t
        answer = t.answer
        self.publish("message.start", {
            "conversation_id": str(t.conversation_id), "message_id": str(answer["id"]),
            "question_id": str(t.question_id), "agent_id": str(t.chat_agent.agent.id),
            "agent_version": t.chat_agent.version, "created_conversation": t.created_conversation})
        values: dict[str, Any] = {}
        error: StratusError | None = None
        try:
            values = self._generate()
        except _Cancelled:
            values = {**self._common, "status": "cancelled", "stop_reason": "cancelled",
                      "content": "".join(self._text)}
        except StratusError as exc:
            error = exc
        except Exception as exc:  # a bug: recorded on the answer and in the log, never half-written
            logger.exception("chat turn failed")
            error = StratusError()
            error.__cause__ = exc
        if error is not None:
            values = {**self._common, "status": "failed", "content": "".join(self._text), "error_code": error.code,
                      "error": error.message, "stop_reason": "error"}
        values["latency"] = {**self._latency, "total_ms": self._ms(t.started)}
        final = self._finish(values)
        record_turn(final)
        if final.status == "failed":
            # The turn's own failure, or the reaper's verdict when it got there first.
            reported = error or StratusError(final.error.message if final.error else None,
                                             code=final.error.code if final.error else None)
            self.publish("error", {"code": reported.code, "message": reported.message, "details": reported.details})
            error = reported
        else:
            self.publish("message.complete", final.model_dump(mode="json"))
        self.publish("done", {"status": final.status})
        return final, error

    def _finish(self, values: dict[str, Any]) -> MessageOut:
        t = self._t
        db = self._d.db
        with db.transaction(t.tenant_id) as conn:
            row = repo.finish_message(conn, t.tenant_id, t.answer["id"], values)
            if row is None:  # the reaper ended it first (the conversation may be deleted since)
                row = repo.get_message(conn, t.tenant_id, t.answer["id"], include_deleted=True)
        if row is None:
            raise MessageNotFound(details={"message_id": str(t.answer["id"])})
        return message_out(row)

    def _checkpoint(self, force: bool = False) -> None:
        now = self._d.clock()
        if not force and now - self._last_checkpoint < self._d.settings.checkpoint_s:
            return
        self._last_checkpoint = now
        t = self._t
        with self._d.db.transaction(t.tenant_id) as conn:
            alive = repo.checkpoint(conn, t.tenant_id, t.answer["id"], "".join(self._text))
        if not alive:  # reaped: stop generating for nobody
            raise _Cancelled

    def _generate(self) -> dict[str, Any]:
        t = self._t
        config = t.chat_agent.config
        latency = self._latency
        with self._d.db.transaction(t.tenant_id) as conn:
            past = repo.history(conn, t.tenant_id, t.conversation_id, t.answer["position"], config.memory.turns)
        query, rewritten = t.question, None
        if config.query_rewrite and past:
            rewritten = self._rewrite(past)
            query = rewritten or t.question
            self._checkpoint()
        candidates: list[prompts.Passage] | None = None
        if config.knowledge.knowledge_base_ids:
            began = self._d.clock()
            candidates = self._retrieve(query)
            latency["retrieval_ms"] = self._ms(began)
            self._checkpoint()
        if self._cancel_requested():
            raise _Cancelled
        plan = prompts.build_prompt(system_prompt=t.system_prompt, question=t.question, history=past,
                                    candidates=candidates, context_tokens=t.context_tokens,
                                    output_tokens=t.output_tokens, memory_max_tokens=config.memory.max_tokens,
                                    count=self._d.count_tokens)
        references = [_reference(p) for p in plan.passages]
        if candidates is not None:
            self.publish("retrieval.references", {"query": query, "rewritten": rewritten is not None,
                                                  "references": references})
        self._common = {"refs": references, "rewritten_query": rewritten, "context": plan.report}
        request = ChatRequest(messages=plan.messages, temperature=config.model.temperature,
                              top_p=config.model.top_p, max_tokens=t.output_tokens)
        model_began = self._d.clock()
        events, _quota, model_name = self._d.gateway().stream_chat(
            t.tenant_id, request, model=config.model.name, fallback_model=config.fallback_model)
        usage: dict[str, Any] | None = None
        stop_reason = "stop"
        self._common["model"] = model_name
        common = self._common
        try:
            for event in events:
                if isinstance(event, TextDelta):
                    if not event.text:
                        continue
                    if not self._text:
                        latency["first_token_ms"] = self._ms(t.started)
                        latency["model_first_token_ms"] = self._ms(model_began)
                    self._text.append(event.text)
                    self.publish("message.delta", {"text": event.text})
                    if self._cancel_requested():
                        raise _Cancelled
                    self._checkpoint()
                elif isinstance(event, StreamEnd):
                    stop_reason = event.stop_reason
                    if event.usage is not None:
                        usage = {"input_tokens": event.usage.input_tokens,
                                 "output_tokens": event.usage.output_tokens,
                                 "total_tokens": event.usage.total_tokens, "estimated": event.usage.estimated}
        finally:
            # Closing the provider stream stops generation there (and accounts the tokens).
            close = getattr(events, "close", None)
            if close is not None:
                close()
        return {**common, "status": "completed", "content": "".join(self._text), "stop_reason": stop_reason,
                "usage": usage}

    def _rewrite(self, past: list[tuple[str, str]]) -> str | None:
        t = self._t
        config = t.chat_agent.config
        try:
            result = self._d.gateway().chat(
                t.tenant_id, ChatRequest(messages=prompts.rewrite_messages(past, t.question), temperature=0,
                                         max_tokens=200),
                model=config.model.name, fallback_model=config.fallback_model)
        except StratusError as exc:
            # An optional step: retrieval uses the question as asked.
            logger.warning("query rewrite failed; retrieving with the question as asked",
                           extra={"code": exc.code, "message_id": str(t.answer["id"])})
            return None
        text = " ".join(result.result.content.split()).strip().strip('"')
        return text[:2000] or None

    def _retrieve(self, query: str) -> list[prompts.Passage]:
        from shared.knowledge.api import RerankRequest, RetrieveRequest

        t = self._t
        settings = t.chat_agent.config.knowledge
        retrieval = settings.retrieval
        body = RetrieveRequest(query=query[:4000], mode=retrieval.mode, top_k=retrieval.top_k,
                               score_threshold=retrieval.score_threshold,
                               semantic_weight=retrieval.semantic_weight,
                               rerank=RerankRequest(model=retrieval.rerank_model) if retrieval.rerank_model else None)
        # A knowledge base deleted since the agent was published is skipped, not fatal.
        result = self._d.retrieval().retrieve(t.principal, settings.knowledge_base_ids, body, skip_unavailable=True)
        return [prompts.Passage(i + 1, item.document_name, item.page, item.content, item)
                for i, item in enumerate(result.items)]

def _reference(passage: prompts.Passage) -> dict[str, Any]:
    item = passage.source
    return {"index": passage.index, "segment_id": str(item.segment_id),
            "knowledge_base_id": str(item.knowledge_base_id), "document_id": str(item.document_id),
            "document_name": item.document_name, "position": item.position, "page": item.page,
            "score": item.score, "score_type": item.score_type, "content": passage.content}
