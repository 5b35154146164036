"""Markdown: prose kept, markup dropped, headings flagged, fenced code verbatim."""

from __future__ import annotations

from pathlib import Path

from shared.knowledge.parsing import MAX_BLOCK_CHARS
from shared.knowledge.types import Block
from tests.support.documents import make_markdown
from tests.unit.knowledge.parsing.support import blocks_of, write

MARKDOWN = """---
title: Handbook
---
# Getting *started* #

Intro with a [link](https://example.com "Example"), an ![architecture diagram](img/a.png),
**bold**, __strong__, ~~old~~ and `inline <T> **code**`. Keep a*b and snake_case.

<!-- a hidden
multi-line comment --> Visible after the comment.

Setext heading
--------------

- item one
* [x] item two
1. numbered

> Quoted text

| name | value |
|------|------:|
| a    | 1     |

```python
# not a heading
x = 1
```

Title two
===
***
[ref]: https://example.com/ref
Text with <span class="x">inline html</span>, <https://example.com/auto> and \\*escaped\\*.
"""


class TestMarkdown:
    def testblocks_of(self, tmp_path: Path) -> None:
        assert blocks_of(write(tmp_path, "a.md", MARKDOWN), "md") == [
            Block("title: Handbook"),
            Block("Getting *started*", heading=True),
            Block("Intro with a link, an architecture diagram,\nbold, strong, old and inline <T> **code**. "
                  "Keep a*b and snake_case."),
            Block(" Visible after the comment."),
            Block("Setext heading", heading=True),
            Block("item one\nitem two\n1. numbered"),
            Block("Quoted text"),
            Block("| name | value |\n| a    | 1     |"),
            Block("# not a heading\nx = 1"),
            Block("Title two", heading=True),
            Block("Text with inline html, https://example.com/auto and *escaped*."),
        ]

    def test_generated_file_keeps_prose_and_drops_markup(self, tmp_path: Path) -> None:
        path = make_markdown(tmp_path / "big.md", 200_000)
        blocks = blocks_of(path, "md")
        headings = [b.text for b in blocks if b.heading]
        assert headings[:3] == ["Generated handbook", "Section 1", "Section 2"]
        text = "\n".join(b.text for b in blocks)
        assert "](" not in text and "<!--" not in text and "```" not in text and "**" not in text
        assert "def handler_2(event):" in text
        assert max(len(b.text) for b in blocks) <= MAX_BLOCK_CHARS
