"""Chatflow generation: the turn runs the agent's chatflow (docs/adr/0037-chatflows.md), in this
invocation, recorded as a workflow run; the chatflow's answer nodes' text is the answer, each
piece a ``message.delta`` as the answer stream writes it (Dify's order). The run sees the turn's
message (``sys.query``), conversation (``sys.conversation_id``, its conversation variables) and
number (``sys.dialogue_count``).

The turn's lifecycle is unchanged: events, checkpoints, the one final write. A cancel (read after
every delta and while nodes run without text) or a reaped answer ends the run ``cancelled`` at
once and the answer ``cancelled`` with what was said; a failed run fails the turn with the run's
error (its code, the failing node in the message).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.cache.ports import StreamEvent
from shared.chat.generation import Generation, TurnCancelled, TurnContext
from shared.errors import StratusError, ValidationFailed

if TYPE_CHECKING:
    from shared.workflows.chatflows import ChatflowTurns


# The run's events a turn's stream repeats (node text is the answer's deltas already).
RUN_PROGRESS = frozenset({"workflow.started", "node_started", "node.started", "node_finished", "node.finished",
                          "workflow.finished"})


class ChatflowAnswer:
    def __init__(self, turns: Callable[[], ChatflowTurns]) -> None:
        self._turns = turns

    def generate(self, ctx: TurnContext) -> Generation:
        from shared.workflows.chatflows import ChatflowTurn
        from shared.workflows.run_event_data import wire_event

        workflow_id = ctx.config.chatflow.workflow_id
        if workflow_id is None:  # a draft chat of an agent not yet bound
            raise ValidationFailed("The agent's chatflow is not set: set config.chatflow.workflow_id",
                                   code="agent_config_invalid", details={"fields": [{
                                       "field": "config.chatflow.workflow_id", "type": "missing",
                                       "message": "name the chatflow this agent runs"}]})
        stop = threading.Event()

        def write(text: str) -> None:
            if stop.is_set():
                return
            try:
                ctx.delta(text)
            except TurnCancelled:
                stop.set()

        def cancelled() -> bool:
            try:
                ctx.check_cancelled()
            except TurnCancelled:
                return True
            return False

        def idle() -> None:
            try:
                ctx.checkpoint()
            except TurnCancelled:
                stop.set()

        def observe(kind: str, data: dict[str, Any]) -> None:
            # The run's progress on the turn's stream too (Dify's chatflow apps show it): its
            # start, each node's start and end, its end, as the run's own stream sends them.
            if kind in RUN_PROGRESS:
                wired = wire_event(StreamEvent("", kind, data))
                if wired is not None:
                    ctx.publish(wired.type, wired.data)

        ctx.check_cancelled()
        outcome = self._turns().run(ChatflowTurn(
            tenant_id=ctx.tenant_id, workflow_id=workflow_id, conversation_id=ctx.conversation_id,
            message_id=ctx.answer_id, query=ctx.question, dialogue_count=ctx.dialogue_count, end_user=ctx.end_user,
            created_by=ctx.member_id, user_variables=dict(ctx.user_variables), files=tuple(ctx.files)),
            write, stop=stop, cancelled=cancelled, idle=idle, observe=observe)
        ctx.keep(context={"workflow_id": str(workflow_id), "workflow_run_id": str(outcome.run_id)})
        if outcome.status == "cancelled":
            raise TurnCancelled
        if outcome.status == "failed":
            error = outcome.error
            raise StratusError(error.message if error else "The chatflow's run failed",
                               code=error.code if error else "workflow_run_failed",
                               details={"workflow_run_id": str(outcome.run_id),
                                        **({"node_id": error.node_id} if error and error.node_id else {})})
        return Generation(stop_reason="stop", usage={"input_tokens": None, "output_tokens": None,
                                                     "total_tokens": outcome.tokens, "estimated": False})
