"""How an answer is generated, apart from the turn around it.

The turn's lifecycle (:mod:`shared.chat.turn`: admit, publish events, checkpoint, cancel,
finish, reap) is the same for every agent mode; what differs is the generation: a strategy
chosen by the agent's mode. Quick-answer (retrieve, then one streamed completion) is the
first, chatflow (the agent's chatflow run for the turn, :mod:`shared.chat.chatflow`) the second,
smart-reasoning (a tool-calling loop, :mod:`shared.chat.agent_loop`) the third: each a strategy
registered here, touching nothing else.
A strategy sees the turn only through :class:`TurnContext`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shared.agents.contract import AgentConfig
    from shared.auth.principal import Principal
    from shared.knowledge.contract import Retriever
    from shared.models.gateway import ModelGateway


class TurnCancelled(Exception):
    """Raised through a strategy when the turn must stop: a cancel was asked for, or the
    answer was reaped meanwhile. The lifecycle ends the answer ``cancelled`` with what it holds."""


@dataclass(frozen=True)
class Generation:
    """How a generation ended normally (the text is the context's, delta by delta)."""

    stop_reason: str = "stop"
    # {input_tokens, output_tokens, total_tokens, estimated}
    usage: dict[str, Any] | None = None
    # The turn pauses on client tools: [{id, name, arguments}] (arguments as JSON text).
    required_action: list[dict[str, str]] | None = None


@dataclass(frozen=True)
class ResumeState:
    """A paused smart-reasoning answer being continued: its stored steps (the last one holds
    the client tools' calls, ``pending``) and the client's output of each, by call id."""

    steps: list[dict[str, Any]]
    outputs: dict[str, str]


class TurnContext(Protocol):
    """What a strategy may use of its turn."""

    @property
    def tenant_id(self) -> uuid.UUID: ...

    @property
    def answer_id(self) -> uuid.UUID: ...

    @property
    def config(self) -> AgentConfig: ...

    @property
    def question(self) -> str: ...

    @property
    def conversation_id(self) -> uuid.UUID: ...

    @property
    def dialogue_count(self) -> int:
        """The turn's number in its conversation (1: the first)."""
        ...

    @property
    def end_user(self) -> str:
        """The conversation's end user (the client's ``user``, or ``member:<id>``)."""
        ...

    @property
    def member_id(self) -> uuid.UUID | None:
        """The member whose token started the turn."""
        ...

    @property
    def user_variables(self) -> dict[str, str]:
        """The agent variables' values for this turn (input, else stored, else default)."""
        ...

    @property
    def files(self) -> list[dict[str, Any]]:
        """The file references of the files the turn names (a chatflow's sys.files)."""
        ...

    @property
    def principal(self) -> Principal | None:
        """Who started the turn (a workflow a tool runs is recorded for them); None outside a
        chat (a workflow's agent node)."""
        ...

    @property
    def system_prompt(self) -> str: ...

    @property
    def client_tools(self) -> bool:
        """Whether the agent's client tools may be offered (the caller can answer them)."""
        ...

    @property
    def resume(self) -> ResumeState | None:
        """A paused answer being continued (None: a turn from its start)."""
        ...

    @property
    def context_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...

    @property
    def gateway(self) -> ModelGateway: ...

    @property
    def retriever(self) -> Retriever: ...

    @property
    def count_tokens(self) -> Callable[[str], int]: ...

    def clock(self) -> float:
        """Now, on the turn's clock (for :meth:`measure`)."""
        ...

    def measure(self, name: str, since: float) -> None:
        """Record milliseconds since ``since`` in the answer's latency, as ``name``."""
        ...

    def memory(self, turns: int) -> list[tuple[str, str]]:
        """Up to ``turns`` past (question, answer) pairs of the conversation, oldest first."""
        ...

    def publish(self, event_type: str, data: dict[str, Any]) -> None:
        """Append an event to the answer's stream and hand it to the live connection."""
        ...

    def delta(self, text: str) -> None:
        """Add text to the answer: published, checkpointed now and then; raises
        :class:`TurnCancelled` when the turn must stop."""
        ...

    def check_cancelled(self) -> None:
        """Raise :class:`TurnCancelled` when a cancel was asked for."""
        ...

    def checkpoint(self) -> None:
        """Save the answer so far (at most every few seconds); raises :class:`TurnCancelled`
        when the answer was reaped meanwhile."""
        ...

    def keep(self, *, references: list[dict[str, Any]] | None = None, rewritten_query: str | None = None,
             context: dict[str, Any] | None = None, model: str | None = None,
             steps: list[dict[str, Any]] | None = None) -> None:
        """What the answer keeps however it ends (completed, cancelled or failed)."""
        ...


class GenerationStrategy(Protocol):
    def generate(self, ctx: TurnContext) -> Generation:
        """Generate the answer through ``ctx``. A ``StratusError`` fails the turn with its
        code; :class:`TurnCancelled` cancels it; anything else fails it as a bug."""
        ...


def default_strategies() -> dict[str, GenerationStrategy]:
    """The generation of each agent mode that can chat; a mode missing here is refused before
    the turn starts (``agent_mode_unavailable``)."""
    from shared.chat.agent_loop import SmartReasoning
    from shared.chat.chatflow import ChatflowAnswer
    from shared.chat.quick_answer import QuickAnswer
    from shared.tools.wiring import tool_runtime
    from shared.workflows.wiring import chatflow_turns

    return {"quick-answer": QuickAnswer(), "chatflow": ChatflowAnswer(chatflow_turns),
            "smart-reasoning": SmartReasoning(tool_runtime)}
