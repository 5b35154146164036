""":func:`parse`: the parser of a format behind one iterator type. Each format's module is
imported when a document of that format is first parsed, so a text upload never loads the
.docx or PDF code (and PDFium loads only when a PDF is read)."""

from __future__ import annotations

from pathlib import Path

from shared.knowledge.errors import UnsupportedDocumentType
from shared.knowledge.parsing.formats import FORMATS
from shared.knowledge.parsing.parsed import BlockReader, Parsed


def parse(path: Path, fmt: str, *, max_pages: int | None = None) -> Parsed:
    """Blocks of the file at ``path`` read as ``fmt`` (see :func:`detect_format`). A PDF with
    more than ``max_pages`` pages raises :class:`DocumentTooLarge` before any page is read."""
    if fmt not in FORMATS:
        raise UnsupportedDocumentType(f"Unsupported document format {fmt!r}; supported: {', '.join(FORMATS)}",
                                      details={"format": fmt, "supported": list(FORMATS)})
    read = _reader(fmt)
    return Parsed(fmt, lambda parsed: read(path, parsed, max_pages))


def _reader(fmt: str) -> BlockReader:
    if fmt == "txt":
        from shared.knowledge.parsing import txt

        return txt.blocks
    if fmt == "md":
        from shared.knowledge.parsing import markdown

        return markdown.blocks
    if fmt == "html":
        from shared.knowledge.parsing import html

        return html.blocks
    if fmt == "pdf":
        from shared.knowledge.parsing import pdf

        return pdf.blocks
    from shared.knowledge.parsing import docx

    return docx.blocks
