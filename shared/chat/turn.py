"""A chat turn's lifecycle, the same for every agent mode: the answer's events (appended to its
stream, replayable by id, and handed to the live connection, if any), checkpoints, cancellation,
and the one final write (completed, cancelled or failed) fenced on ``status = 'running'`` —
whichever of the generator and the reaper gets there first wins. The generation in between is
the mode's strategy (:mod:`shared.chat.generation`), which sees the turn as a
:class:`~shared.chat.generation.TurnContext`: this class, through that narrow protocol."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.cache.ports import StreamEvent
from shared.chat.events import cancel_key, stream_key
from shared.chat.generation import Generation, GenerationStrategy, ResumeState, TurnCancelled
from shared.chat.metrics import record_turn
from shared.conversations.contract import AnswerOutcome, MessageOut
from shared.errors import StratusError

if TYPE_CHECKING:
    from shared.agents.contract import AgentConfig
    from shared.auth.principal import Principal
    from shared.chat.service import ChatDeps, Turn
    from shared.knowledge.contract import Retriever
    from shared.models.gateway import ModelGateway

logger = logging.getLogger(__name__)

STREAM_MIN_LEN = 10_000
STREAM_EXTRA_EVENTS = 100
Emit = Callable[[StreamEvent], None]


class TurnLifecycle:
    def __init__(self, deps: ChatDeps, turn: Turn, emit: Emit | None, strategy: GenerationStrategy) -> None:
        self._d = deps
        self._t = turn
        self._emit = emit
        self._strategy = strategy
        self._store = deps.conversations()
        self._events = deps.events()
        self._kv = deps.kv()
        self._key = stream_key(turn.answer_id)
        self._cancel_key = cancel_key(turn.answer_id)
        # A continued answer goes on from the text it held when it paused.
        self._text: list[str] = [turn.content] if turn.content else []
        self._last_checkpoint = deps.clock()
        self._emit_failed = False
        # What the answer keeps however it ends (references, context report, model).
        self._kept: dict[str, Any] = {}
        self._latency: dict[str, Any] = {}
        # A delta is about a token: the stream must hold the longest answer whole, or a replay
        # from the start would begin mid-answer.
        self._maxlen = max(STREAM_MIN_LEN, turn.output_tokens + STREAM_EXTRA_EVENTS)

    # The context a strategy sees ------------------------------------------------------------------
    @property
    def tenant_id(self) -> uuid.UUID:
        return self._t.tenant_id

    @property
    def answer_id(self) -> uuid.UUID:
        return self._t.answer_id

    @property
    def config(self) -> AgentConfig:
        return self._t.chat_agent.config

    @property
    def question(self) -> str:
        return self._t.question

    @property
    def conversation_id(self) -> uuid.UUID:
        return self._t.conversation_id

    @property
    def dialogue_count(self) -> int:
        # A turn is a question and its answer: the answer's position is twice the turn's number.
        return max(1, self._t.answer_position // 2)

    @property
    def end_user(self) -> str:
        return self._t.end_user

    @property
    def user_variables(self) -> dict[str, str]:
        return self._t.user_variables

    @property
    def files(self) -> list[dict[str, Any]]:
        return self._t.files

    @property
    def member_id(self) -> uuid.UUID | None:
        return self._t.principal.user_id

    @property
    def principal(self) -> Principal:
        return self._t.principal

    @property
    def system_prompt(self) -> str:
        return self._t.system_prompt

    @property
    def client_tools(self) -> bool:
        return self._t.client_tools

    @property
    def resume(self) -> ResumeState | None:
        return self._t.resume

    @property
    def context_tokens(self) -> int:
        return self._t.context_tokens

    @property
    def output_tokens(self) -> int:
        return self._t.output_tokens

    @property
    def gateway(self) -> ModelGateway:
        return self._d.gateway()

    @property
    def retriever(self) -> Retriever:
        return self._d.retrieval()

    @property
    def count_tokens(self) -> Callable[[str], int]:
        return self._d.count_tokens

    def clock(self) -> float:
        return self._d.clock()

    def measure(self, name: str, since: float) -> None:
        self._latency[name] = self._ms(since)

    def memory(self, turns: int) -> list[tuple[str, str]]:
        t = self._t
        if t.history is not None:
            # The client's own history (a stateless API): the same memory limit applies.
            return t.history[-turns:] if turns > 0 else []
        return self._store.history(t.tenant_id, t.conversation_id, t.answer_position, turns)

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

    def delta(self, text: str) -> None:
        if not self._text:
            self.measure("first_token_ms", self._t.started)
        self._text.append(text)
        self.publish("message.delta", {"text": text})
        self.check_cancelled()
        self.checkpoint()

    def check_cancelled(self) -> None:
        if self._kv.get(self._cancel_key) is not None:
            raise TurnCancelled

    def checkpoint(self) -> None:
        now = self._d.clock()
        if now - self._last_checkpoint < self._d.settings.checkpoint_s:
            return
        self._last_checkpoint = now
        if not self._store.checkpoint(self._t.tenant_id, self._t.answer_id, "".join(self._text)):
            raise TurnCancelled  # reaped: stop generating for nobody

    def keep(self, *, references: list[dict[str, Any]] | None = None, rewritten_query: str | None = None,
             context: dict[str, Any] | None = None, model: str | None = None,
             steps: list[dict[str, Any]] | None = None) -> None:
        given = {"references": references, "rewritten_query": rewritten_query, "context": context, "model": model,
                 "steps": steps}
        self._kept.update({name: value for name, value in given.items() if value is not None})

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
        self.publish("message.start", {
            "conversation_id": str(t.conversation_id), "message_id": str(t.answer_id),
            "question_id": str(t.question_id), "agent_id": str(t.chat_agent.agent.id),
            "agent_version": t.chat_agent.version, "created_conversation": t.created_conversation})
        outcome: AnswerOutcome | None = None
        error: StratusError | None = None
        try:
            generation = self._strategy.generate(self)
            if generation.required_action:
                return self._pause(generation)
            outcome = self._outcome("completed", stop_reason=generation.stop_reason, usage=generation.usage)
        except TurnCancelled:
            outcome = self._outcome("cancelled", stop_reason="cancelled")
        except StratusError as exc:
            error = exc
        except Exception as exc:  # a bug: recorded on the answer and in the log, never half-written
            logger.exception("chat turn failed")
            error = StratusError()
            error.__cause__ = exc
        if error is not None:
            outcome = self._outcome("failed", stop_reason="error", error_code=error.code, error=error.message)
        assert outcome is not None
        final = self._store.finish_answer(t.tenant_id, t.answer_id, outcome)
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

    def _pause(self, generation: Generation) -> tuple[MessageOut, StratusError | None]:
        """The answer waits for the client tools' outputs: stored ``requires_action`` (nothing
        waits here: the stream ends, a submit continues it), announced, and the stream closed."""
        t = self._t
        action: dict[str, Any] = {"tool_calls": generation.required_action}
        if t.history is not None:
            action["history"] = [list(pair) for pair in t.history]
        outcome = self._outcome("requires_action", stop_reason="requires_action", usage=generation.usage,
                                required_action=action)
        final = self._store.pause_answer(t.tenant_id, t.answer_id, outcome, self._d.settings.tool_outputs_ttl_s)
        if final.status == "requires_action" and self._kv.get(self._cancel_key) is not None \
                and self._store.cancel_paused(t.tenant_id, t.answer_id):
            # A cancel asked while the step ran (its flag unread): honoured, not left to a submit.
            # The answer ended, so the fenced write only reads it back.
            final = self._store.finish_answer(t.tenant_id, t.answer_id, outcome)
        if final.status == "requires_action" and final.required_action is not None:
            self.publish("message.requires_action", {
                "conversation_id": str(t.conversation_id), "message_id": str(t.answer_id),
                **final.required_action.model_dump(mode="json"), "usage": final.usage})
        elif final.status == "failed":  # the reaper came first
            error = StratusError(final.error.message if final.error else None,
                                 code=final.error.code if final.error else None)
            self.publish("error", {"code": error.code, "message": error.message, "details": error.details})
            self.publish("done", {"status": final.status})
            return final, error
        else:
            self.publish("message.complete", final.model_dump(mode="json"))
        self.publish("done", {"status": final.status})
        return final, None

    def _outcome(self, status: Any, **values: Any) -> AnswerOutcome:
        return AnswerOutcome(status=status, content="".join(self._text), **self._kept, **values,
                             latency={**self._latency, "total_ms": self._ms(self._t.started)})
