"""Variable references: selectors (``["node_id", "field", ...]``), template references
(``{{#node_id.field#}}``, as Dify writes them) and the ``sys`` namespace, plus the pool a run
resolves them against."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

SYS = "sys"
# What ``sys.*`` holds in every run. ``workflow_run_id``/``app_id`` are Dify's names for
# run_id/workflow_id, kept so imported workflows resolve them.
SYS_FIELDS: dict[str, str] = {
    "run_id": "string",
    "workflow_id": "string",
    "version": "string",
    "user_id": "string",
    "tenant_id": "string",
    "time": "string",
    "workflow_run_id": "string",
    "app_id": "string",
}
SYS_ALIASES = {"workflow_run_id": "run_id", "app_id": "workflow_id"}
# What a chatflow's runs also hold (Dify's names): the user's message, the conversation, the
# turn's number in it (1 for the first), the message's files (their file references), and the
# chatting agent's variables for the end user by name (sys.user_variables.<name>, strings;
# docs/variables.md).
CHAT_SYS_FIELDS: dict[str, str] = {
    "query": "string",
    "conversation_id": "string",
    "dialogue_count": "number",
    "files": "array[object]",
    "user_variables": "object",
}


def sys_fields(mode: str) -> dict[str, str]:
    """The ``sys.*`` fields a document of ``mode`` (workflow, chatflow) may read, with their types."""
    return {**SYS_FIELDS, **CHAT_SYS_FIELDS} if mode == "chatflow" else dict(SYS_FIELDS)

# {{#node_id.field(.path)*#}}: node ids are [A-Za-z0-9_-]; fields and paths are names or indexes.
TEMPLATE_REFERENCE = re.compile(r"\{\{#([A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_]{1,64}){1,8})#\}\}")
MAX_SELECTOR_LENGTH = 10


def template_references(text: str) -> list[list[str]]:
    """The selectors a template names, in order of appearance."""
    return [match.group(1).split(".") for match in TEMPLATE_REFERENCE.finditer(text)]


def is_selector(value: Any) -> bool:
    return (isinstance(value, list) and 2 <= len(value) <= MAX_SELECTOR_LENGTH
            and all(isinstance(part, str) and part for part in value))


class UnresolvedVariable(LookupError):
    def __init__(self, selector: Sequence[str]) -> None:
        super().__init__(f"variable {'.'.join(selector)} has no value in this run")
        self.selector = list(selector)


class VariableNotWritable(LookupError):
    """An assignment to something that is not a variable the running scope may change."""


class VariablePool:
    """The values a run has so far: ``sys`` and each finished node's outputs, by node id.

    A container's children run against a *layer* (:meth:`layer`): a pool of their own over the
    run's, holding what the container gives them under its id (an iteration's ``item`` and
    ``index``, a loop's variables) and their own outputs, and reading through to the run's pool
    for everything else. The run's pool never sees a child's outputs. A layer may declare
    variables its nodes can change (a loop's variables, for ``assigner`` nodes)."""

    def __init__(self, system: Mapping[str, Any], outputs: Mapping[str, Mapping[str, Any]] | None = None,
                 *, parent: VariablePool | None = None,
                 writable: Mapping[str, Mapping[str, str]] | None = None,
                 observer: Callable[[Sequence[str], Any], None] | None = None) -> None:
        self._system = dict(system)
        for alias, name in SYS_ALIASES.items():
            self._system.setdefault(alias, self._system.get(name))
        self._outputs: dict[str, Mapping[str, Any]] = dict(outputs or {})
        self._parent = parent
        # node id → variable name → declared type, of the variables this layer lets nodes change.
        self._writable = {node_id: dict(names) for node_id, names in (writable or {}).items()}
        # Told of every assignment made through this layer (or a layer over it) to a variable
        # owned below it: how a node's run learns which conversation variables it changed.
        self._observer = observer

    def layer(self, outputs: Mapping[str, Mapping[str, Any]],
              writable: Mapping[str, Mapping[str, str]] | None = None,
              observer: Callable[[Sequence[str], Any], None] | None = None) -> VariablePool:
        """A pool over this one holding ``outputs`` (which hide this pool's values of the same
        node ids); ``writable`` names the variables among them that nodes may assign;
        ``observer`` is told of assignments made through it to variables owned below it."""
        return VariablePool(self._system, outputs, parent=self, writable=writable, observer=observer)

    def add(self, node_id: str, outputs: Mapping[str, Any]) -> None:
        self._outputs[node_id] = outputs

    def has_node(self, node_id: str) -> bool:
        return node_id in self._outputs or (self._parent is not None and self._parent.has_node(node_id))

    def _root(self, head: str) -> Any:
        if head == SYS:
            return self._system
        if head in self._outputs:
            return self._outputs[head]
        return self._parent._root(head) if self._parent is not None else None

    def get(self, selector: Sequence[str]) -> Any:
        """The value at ``selector``; raises :class:`UnresolvedVariable` when any part is absent."""
        head, *path = selector
        root: Any = self._root(head)
        if root is None:
            raise UnresolvedVariable(selector)
        value = root
        for part in path:
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise UnresolvedVariable(selector)
        return value

    def get_or_none(self, selector: Sequence[str]) -> Any:
        try:
            return self.get(selector)
        except UnresolvedVariable:
            return None

    def _owner(self, selector: Sequence[str]) -> VariablePool | None:
        if len(selector) == 2 and selector[1] in self._writable.get(selector[0], {}):
            return self
        return self._parent._owner(selector) if self._parent is not None else None

    def variable_type(self, selector: Sequence[str]) -> str | None:
        """The declared type of the writable variable at ``selector``; None when ``selector``
        names no variable a node of this scope may change."""
        owner = self._owner(selector)
        return owner._writable[selector[0]][selector[1]] if owner is not None else None

    def assign(self, selector: Sequence[str], value: Any) -> None:
        """Set a writable variable (raises :class:`VariableNotWritable` for anything else)."""
        owner = self._owner(selector)
        if owner is None:
            raise VariableNotWritable(".".join(selector))
        node_id, name = selector
        owner._outputs[node_id] = {**owner._outputs.get(node_id, {}), name: value}
        pool: VariablePool | None = self
        while pool is not None and pool is not owner:
            if pool._observer is not None:
                pool._observer(selector, value)
            pool = pool._parent

    def render(self, template: str) -> str:
        """``template`` with each ``{{#...#}}`` replaced by its value's text (an unresolved
        reference renders empty, as in Dify)."""
        return TEMPLATE_REFERENCE.sub(lambda match: to_text(self.get_or_none(match.group(1).split("."))), template)

    def iter_outputs(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Every node's outputs this pool reads (a layer's hiding those below it)."""
        seen: set[str] = set()
        pool: VariablePool | None = self
        while pool is not None:
            for node_id, outputs in pool._outputs.items():
                if node_id not in seen:
                    seen.add(node_id)
                    yield node_id, outputs
            pool = pool._parent


def to_text(value: Any) -> str:
    """A value as a template shows it: strings as they are, None empty, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)
