"""HTML: block elements become blocks, headings flagged; scripts, styles and the head are
skipped. The standard library's parser is fed the file in pieces as it is decoded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from shared.knowledge.parsing.decoding import cut, decoded
from shared.knowledge.parsing.parsed import MAX_BLOCK_CHARS, Parsed
from shared.knowledge.types import Block


def blocks(path: Path, parsed: Parsed, max_pages: int | None) -> Iterator[Block]:
    return _html_blocks(path)


_SKIP_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "iframe", "object",
                        "canvas"})
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "hr", "html", "legend",
    "li", "main", "menu", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr",
    "ul", *_HEADING_TAGS,
})
_HTML_SPACES = re.compile(r"[ \t\n\r\f]+")


class _HtmlBlocks(HTMLParser):
    """Collects blocks as the document is fed; the caller drains ``blocks`` after each feed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._parts: list[str] = []
        self._size = 0
        self._skip = 0
        self._pre = 0
        self._heading = 0
        self._cells = 0  # cells seen in the current table row

    def _flush(self) -> None:
        text = "".join(self._parts)
        self._parts, self._size = [], 0
        # Preformatted text keeps its indentation; elsewhere spaces around line breaks go.
        text = text.strip("\n") if self._pre else re.sub(r" *\n *", "\n", re.sub(r" {2,}", " ", text)).strip()
        if text.strip():
            self.blocks.append(Block(text, heading=self._heading > 0))

    def _append(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)
        if self._size > MAX_BLOCK_CHARS:
            joined = "".join(self._parts)
            head, rest = cut(joined, MAX_BLOCK_CHARS)
            self._parts = [head]
            self._flush()
            self._parts, self._size = [rest], len(rest)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
            return
        if tag == "body":  # a <head> whose end tag was left out ends here
            self._skip = 0
        if self._skip:
            return
        if tag in _BLOCK_TAGS:
            self._flush()
            if tag in _HEADING_TAGS:
                self._heading += 1
            elif tag == "pre":
                self._pre += 1
            elif tag == "tr":
                self._cells = 0
        elif tag in ("td", "th"):
            if self._cells:
                self._append(" | ")
            self._cells += 1
        elif tag == "br":
            self._append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and alt.strip():
                self._append(f" {alt.strip()} ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP_TAGS:  # <script/> opens nothing
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag in _BLOCK_TAGS:
            self._flush()
            if tag in _HEADING_TAGS:
                self._heading = max(0, self._heading - 1)
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self._append(data if self._pre else _HTML_SPACES.sub(" ", data))

    def close(self) -> None:
        super().close()
        self._flush()


def _html_blocks(path: Path) -> Iterator[Block]:
    parser = _HtmlBlocks()
    for text in decoded(path, html=True):
        parser.feed(text)
        yield from parser.blocks
        parser.blocks.clear()
    parser.close()
    yield from parser.blocks



def html_text(html: str) -> str:
    """Readable text of an HTML page held in memory (the web_fetch tool's): its blocks as
    paragraphs, headings marked as in Markdown, scripts, styles and the head left out."""
    parser = _HtmlBlocks()
    parser.feed(html)
    parser.close()
    return "\n\n".join(f"# {block.text}" if block.heading else block.text for block in parser.blocks)
