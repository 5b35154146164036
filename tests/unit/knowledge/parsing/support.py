"""Helpers the parser tests share."""

from __future__ import annotations

from pathlib import Path

from shared.knowledge.parsing import parse
from shared.knowledge.types import Block


def blocks_of(path: Path, fmt: str) -> list[Block]:
    return list(parse(path, fmt))


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path
