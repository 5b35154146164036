"""Markdown: the text a reader sees, markup removed; headings flagged, fenced code verbatim."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from shared.knowledge.parsing.decoding import decoded, lines
from shared.knowledge.parsing.parsed import MAX_BLOCK_CHARS, Parsed
from shared.knowledge.types import Block


def blocks(path: Path, parsed: Parsed, max_pages: int | None) -> Iterator[Block]:
    return markdown_blocks(lines(decoded(path)))


_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_THEMATIC = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*\S+")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*$")
_QUOTE = re.compile(r"^[ \t]*(?:>[ \t]?)+")
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+(?:\[[ xX]\][ \t]+)?")
_IMAGE = re.compile(r"!\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])")
_LINK = re.compile(r"\[([^\]]+)\](?:\([^)\s]*(?:[ \t]+(?:\"[^\"]*\"|'[^']*'))?\)|\[[^\]]*\])")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+|[^@>\s]+@[^>\s]+\.[^>\s]+)>")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_EMPHASIS = re.compile(r"(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1")
_CODE = re.compile(r"(`+)(.+?)\1")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>])")


def _inline(line: str) -> str:
    """Markup removed, text kept: images leave their alt text, links their text, emphasis
    and inline HTML tags their content, code spans their content untouched. Single ``*``/``_``
    stay (they are as often arithmetic or identifiers as emphasis)."""
    if "`" in line:
        parts = _CODE.split(line)  # [text, fence, code, text, fence, code, ..., text]
        return "".join(_inline_text(part) if index % 3 == 0 else part.strip() if index % 3 == 2 else ""
                       for index, part in enumerate(parts))
    return _inline_text(line)


def _inline_text(line: str) -> str:
    if "[" in line:
        line = _IMAGE.sub(r"\1", line)
        line = _LINK.sub(r"\1", line)
    if "<" in line:
        line = _AUTOLINK.sub(r"\1", line)
        line = _TAG.sub("", line)
    if "**" in line or "__" in line or "~~" in line:
        line = _EMPHASIS.sub(r"\2", line)
    if "\\" in line:
        line = _ESCAPE.sub(r"\1", line)
    return line


def _strip_comments(line: str, in_comment: bool) -> tuple[str, bool]:
    """The line without HTML comments (``<!-- … -->``, possibly spanning lines)."""
    out: list[str] = []
    while line:
        if in_comment:
            end = line.find("-->")
            if end < 0:
                return "".join(out), True
            line, in_comment = line[end + 3:], False
        else:
            start = line.find("<!--")
            if start < 0:
                out.append(line)
                break
            out.append(line[:start])
            line, in_comment = line[start + 4:], True
    return "".join(out), in_comment


def markdown_blocks(source: Iterable[str]) -> Iterator[Block]:
    """Paragraphs, list items and table rows as text; ATX and setext headings flagged; fenced
    code kept verbatim (fences dropped); comments, link definitions, table rules, thematic
    breaks and front-matter fences dropped."""
    paragraph: list[str] = []
    size = 0
    fence: str | None = None
    in_comment = False
    first = True
    in_front_matter = False

    def flush(heading: bool = False) -> Iterator[Block]:
        nonlocal paragraph, size
        if paragraph:
            text = "\n".join(paragraph)
            paragraph, size = [], 0
            if text.strip():
                yield Block(text, heading=heading)

    for raw in source:
        if fence is not None:  # fenced code: verbatim until the closing fence
            stripped = raw.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = None
                yield from flush()
                continue
            if paragraph and size + len(raw) > MAX_BLOCK_CHARS:
                yield from flush()
            paragraph.append(raw)
            size += len(raw) + 1
            continue
        if first:
            first = False
            if raw.strip() == "---":  # YAML front matter: kept as text, never a heading
                in_front_matter = True
                continue
        if in_front_matter:
            if raw.strip() in ("---", "..."):
                in_front_matter = False
                yield from flush()
            else:
                paragraph.append(raw)
                size += len(raw) + 1
            continue
        if in_comment or "<!--" in raw:
            raw, in_comment = _strip_comments(raw, in_comment)
            if not raw.strip():
                continue
        if not raw.strip():
            yield from flush()
            continue
        if match := _FENCE.match(raw):
            yield from flush()
            fence = match.group(1)
            continue
        if match := _ATX.match(raw):
            yield from flush()
            title = _inline(match.group(2) or "").strip()
            if title:
                yield Block(title, heading=True)
            continue
        if _SETEXT.match(raw) and paragraph:
            yield from flush(heading=True)
            continue
        if _THEMATIC.match(raw):
            yield from flush()
            continue
        if _LINK_DEFINITION.match(raw) or _TABLE_RULE.match(raw):
            continue
        line = _QUOTE.sub("", raw) if ">" in raw else raw
        line = _BULLET.sub(r"\1", line)
        line = _inline(line)
        if not line.strip():
            continue
        if paragraph and size + len(line) > MAX_BLOCK_CHARS:
            yield from flush()
        paragraph.append(line)
        size += len(line) + 1
    yield from flush()

