"""Navigation lines and table-of-contents entries are left out before chunking; prose that
merely mentions "next" or ends with dots stays."""

from __future__ import annotations

import pytest

from shared.knowledge.boilerplate import BoilerplateFilter, is_boilerplate
from shared.knowledge.types import Block


@pytest.mark.parametrize("line", [
    "Next: Installing the agent  Previous: Overview",
    "« Previous: Quotas | Next: Usage » | Up: Models",
    "Home: Manual   Next: Chapter 2",
    "Introduction .......... 3",
    "2.4 Configuring retries . . . . . . . . 17",
    "Appendix B…………xii",
    "   Glossary ........................................ 143   ",
])
def test_boilerplate_lines(line: str) -> None:
    assert is_boilerplate(line)


@pytest.mark.parametrize("line", [
    "Next: we configure the server and restart it.",
    "The previous release broke uploads; the next one fixes it.",
    "Wait for it.... then retry",
    "Version 1.2.3.4 was released on page 5",
    "",
    "next: " + "word " * 80 + "previous: the end",
])
def test_prose_is_kept(line: str) -> None:
    assert not is_boilerplate(line)


def test_filter_drops_lines_and_emptied_blocks_and_counts_them() -> None:
    blocks = [Block("Contents\nIntroduction ....... 1\nUsage ....... 4", page=1),
              Block("Next: Usage  Previous: Contents", page=2),
              Block("Stratus answers questions from your documents.", page=2)]
    keep = BoilerplateFilter()
    out = list(keep(blocks))
    assert out == [Block("Contents", page=1), Block("Stratus answers questions from your documents.", page=2)]
    assert keep.removed == 3
