"""The knowledge vocabulary in shared/knowledge/types.py is the database's: the statuses and
kinds the tables accept, and the statuses the sweeper treats as indexing under way."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import shared
from shared.knowledge.types import (
    DOCUMENT_STATUSES,
    INDEXING_STATUSES,
    DocumentStatus,
    KnowledgeBaseStatus,
    SegmentKind,
)

SCHEMA = (Path(shared.__file__).parent / "db" / "migrations" / "0006_knowledge.sql").read_text()


def _checked(column: str) -> set[str]:
    """The values of ``column``'s CHECK (column IN (...)) in the schema (one per column)."""
    [values] = re.findall(rf"CHECK \({column} IN \(([^)]*)\)\)", SCHEMA)
    return set(re.findall(r"'([a-z_]+)'", values))


def _table(name: str) -> str:
    [body] = re.findall(rf"CREATE TABLE {name} \((.*?)\n\);", SCHEMA, re.DOTALL)
    return body


def test_document_statuses_are_the_tables() -> None:
    checked = re.search(r"CHECK \(status IN \(([^)]*)\)\)", _table("documents"))
    assert checked is not None
    assert set(DOCUMENT_STATUSES) == set(re.findall(r"'([a-z_]+)'", checked.group(1)))
    assert get_args(DocumentStatus) == DOCUMENT_STATUSES


def test_indexing_statuses_are_the_sweepers() -> None:
    # The partial index and documents_stuck() name the same set: documents indexing now.
    in_sql = re.findall(r"status IN \(('uploaded'[^)]*)\)", SCHEMA)
    assert in_sql
    for values in in_sql:
        assert tuple(re.findall(r"'([a-z_]+)'", values)) == INDEXING_STATUSES
    assert set(INDEXING_STATUSES) < set(DOCUMENT_STATUSES)


def test_knowledge_base_statuses_and_segment_kinds() -> None:
    checked = re.search(r"CHECK \(status IN \(([^)]*)\)\)", _table("knowledge_bases"))
    assert checked is not None
    assert set(get_args(KnowledgeBaseStatus)) == set(re.findall(r"'([a-z_]+)'", checked.group(1)))
    assert set(get_args(SegmentKind)) == _checked("kind")
