"""Boilerplate lines left out before chunking: they carry no content, yet match many queries
(every page of a manual says "Next: … Previous: …") and ranked near the top of retrievals.

- Navigation lines: two or more of ``Next:``, ``Previous:``, ``Prev:``, ``Up:``, ``Home:``
  labels on one short line (one label alone may start a sentence of prose).
- Table-of-contents entries: a title, a dot leader (four or more dots, or ellipses) and a
  page number (arabic or roman).

Whole lines are dropped, never parts of one; a block left empty is dropped. The preview says
how many lines went (``PreviewOut.boilerplate_lines``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from shared.knowledge.types import Block

_NAV_LABEL = re.compile(r"(?:^|\s|\||·|•)(?:next|previous|prev|up|home)\s*(?::|»|\u203a|→)", re.IGNORECASE)
_TOC_ENTRY = re.compile(r"^\s*\S.{0,200}?(?:\.\s*|…\s*|·\s*){4,}\s*(?:\d{1,4}|[ivxlcdm]{1,8})\s*$", re.IGNORECASE)
# Longer lines are prose, whatever they contain.
_MAX_NAV_CHARS = 300


def is_boilerplate(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    if len(stripped) <= _MAX_NAV_CHARS and len(_NAV_LABEL.findall(stripped)) >= 2:
        return True
    return _TOC_ENTRY.match(stripped) is not None


@dataclass
class BoilerplateFilter:
    """Blocks without their boilerplate lines; ``removed`` counts the lines left out."""

    removed: int = 0

    def __call__(self, blocks: Iterable[Block]) -> Iterator[Block]:
        for block in blocks:
            lines = block.text.split("\n")
            kept = [line for line in lines if not is_boilerplate(line)]
            if len(kept) == len(lines):
                yield block
                continue
            self.removed += len(lines) - len(kept)
            text = "\n".join(kept)
            if text.strip():
                yield replace(block, text=text)
