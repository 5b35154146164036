"""Every entry point of the knowledge services opens its own X-Ray subsegment (the tracer in
shared/observability.py), named after the method, and records no response (segment text and
document fields stay out of traces, and below X-Ray's 64 KB document limit)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock

import pytest

from shared.knowledge.documents import DocumentService
from shared.knowledge.ingestion import IngestionService
from shared.knowledge.knowledge_bases import KnowledgeBaseService
from shared.knowledge.segments import SegmentService
from shared.knowledge.service import KnowledgeDeps
from shared.observability import tracer

SERVICES: list[type[Any]] = [KnowledgeBaseService, DocumentService, SegmentService, IngestionService]


class _Unreachable(Exception):
    """What every port raises: the test stops at the first I/O."""


class _Subsegment:
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def put_annotation(self, key: str, value: Any) -> None:
        pass


class _Provider:
    def __init__(self) -> None:
        self.opened: list[tuple[str, _Subsegment]] = []

    @contextlib.contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[_Subsegment]:
        subsegment = _Subsegment()
        self.opened.append((name or "", subsegment))
        yield subsegment


def _deps() -> KnowledgeDeps:
    db = MagicMock()
    db.transaction.side_effect = _Unreachable
    unreachable = MagicMock(side_effect=_Unreachable)
    return KnowledgeDeps(db=db, settings=MagicMock(), gateway=unreachable, store=unreachable, files=unreachable,
                         queue=unreachable, executions=unreachable, token_counter=unreachable)


def _entry_points(cls: type[Any]) -> list[str]:
    return [name for name, member in vars(cls).items() if inspect.isfunction(member) and not name.startswith("_")]


def test_every_use_case_is_an_entry_point() -> None:
    public = {name for cls in SERVICES for name in _entry_points(cls)}
    assert {"create_knowledge_base", "list_knowledge_bases", "get_knowledge_base", "update_knowledge_base",
            "delete_knowledge_base", "create_document", "list_documents", "get_document", "update_document",
            "delete_document", "reindex_document", "preview_chunks", "list_segments", "create_segment",
            "update_segment", "handle_message", "index", "embed_batch", "finish", "sweep",
            "purge_knowledge_base"} <= public


@pytest.mark.parametrize(("cls", "name"), [(cls, name) for cls in SERVICES for name in _entry_points(cls)])
def test_entry_point_opens_a_subsegment(monkeypatch: pytest.MonkeyPatch, cls: type[Any], name: str) -> None:
    provider = _Provider()
    monkeypatch.setattr(tracer, "provider", provider)
    method = getattr(cls(_deps()), name)
    required = [p for p in inspect.signature(method).parameters.values()
                if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    with contextlib.suppress(Exception):
        method(*(MagicMock() for _ in required))
    assert provider.opened, f"{cls.__name__}.{name} is not traced"
    opened, _ = provider.opened[0]
    assert opened == f"## {cls.__module__}.{cls.__qualname__}.{name}"
    # The wrapper Powertools built keeps its options in its closure.
    wrapper = vars(cls)[name]
    options = dict(zip(wrapper.__code__.co_freevars, (cell.cell_contents for cell in wrapper.__closure__), strict=True))
    assert options["capture_response"] is False, f"{cls.__name__}.{name} would record its response"
