"""What a node executor is handed and what it answers. An executor is two functions: ``resolve``
reads the values the node takes from the run's variable pool (recorded as the node run's inputs,
even when the node then fails), and ``execute`` runs the node on them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from shared.workflows.definition import SOURCE_HANDLE, Node, WorkflowDocument
from shared.workflows.variables import VariablePool

if TYPE_CHECKING:
    from shared.workflows.engine.runner import ChildRun, EnginePorts, NodeRunner, RunContext

ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass(frozen=True)
class NodeCall(Generic[ConfigT]):
    context: RunContext
    node: Node
    config: ConfigT
    pool: VariablePool
    ports: EnginePorts
    # The attempt's time budget; ports that take a timeout get no more than this.
    timeout_s: float
    # Set when the attempt timed out: a long executor (a model stream) stops at the next chance.
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Streams text as the node produces it (``text_chunk`` events); dropped once cancelled.
    chunk: Callable[[str], None] = lambda _text: None
    # Counts model tokens (prompt + completion) as they are spent, whether the node then
    # succeeds or not.
    spend: Callable[[int], None] = lambda _tokens: None
    # What a container needs to run its children: the whole document, the runner (its
    # children run as any node does), the run's event callback (dropped once cancelled) and
    # where each child's result is recorded.
    document: WorkflowDocument | None = None
    runner: NodeRunner | None = None
    emit: Callable[[str, dict[str, Any]], None] = lambda _type, _data: None
    record: Callable[[ChildRun], None] = lambda _child: None


@dataclass(frozen=True)
class NodeOutput:
    outputs: dict[str, Any]
    # The handle the node leaves by: "source", or an if/else case id or "false".
    handle: str = SOURCE_HANDLE


@dataclass(frozen=True)
class NodeExecutor(Generic[ConfigT]):
    resolve: Callable[[NodeCall[ConfigT]], dict[str, Any]]
    execute: Callable[[NodeCall[ConfigT], dict[str, Any]], NodeOutput]


def selector_key(selector: Sequence[str]) -> str:
    """How a resolved selector is named in a node run's recorded inputs."""
    return ".".join(selector)


def values_of(pool: VariablePool, selectors: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Each name's value in the pool, None where the selector has none (a branch that did not
    run), as Dify passes absent variables on."""
    return {name: pool.get_or_none(selector) for name, selector in selectors.items()}
