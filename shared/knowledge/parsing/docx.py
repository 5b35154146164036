""".docx: ``word/document.xml`` read with ``iterparse``, each paragraph released once read;
headings by style or outline level, table rows as blocks. Oversized parts are refused before
reading (zip bombs)."""

from __future__ import annotations

import contextlib
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal
from xml.etree import ElementTree

from shared.knowledge.errors import DocumentParseError, DocumentTooLarge
from shared.knowledge.parsing.decoding import bounded
from shared.knowledge.parsing.parsed import Parsed
from shared.knowledge.types import Block

# word/document.xml inflated: beyond this the file is refused before reading (zip bombs).
MAX_DOCX_XML_BYTES = 512 * 1024 * 1024

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_EXTENDED_PROPERTIES = "{http://schemas.openxmlformats.org/officeDocument/2006/extended-properties}"
_P, _T, _TBL, _TR, _TC = _W + "p", _W + "t", _W + "tbl", _W + "tr", _W + "tc"
_HEADING_STYLE_NAME = re.compile(r"^(heading \d|title|subtitle)$", re.IGNORECASE)
_HEADING_STYLE_ID = re.compile(r"^(heading\d|title|subtitle)$", re.IGNORECASE)
_RUN_TEXT = {_W + "tab": "\t", _W + "br": "\n", _W + "cr": "\n", _W + "noBreakHyphen": "-"}


def _iterparse(source: IO[bytes], events: tuple[Literal["start", "end"], ...]) -> Iterator[tuple[str, Any]]:
    # The bundled expat (>= 2.4.1; 2.5 on Python 3.11) refuses entity-expansion bombs and
    # ElementTree resolves no external entities, so untrusted XML is safe to parse here.
    return ElementTree.iterparse(source, events=events)  # noqa: S314


def _heading_styles(archive: zipfile.ZipFile) -> set[str]:
    """Ids of paragraph styles that are headings: named "heading N"/"Title" (built-in names
    are English in every localisation) or carrying an outline level."""
    ids: set[str] = set()
    try:
        handle = archive.open("word/styles.xml")
    except KeyError:
        return ids
    with handle:
        for _, element in _iterparse(handle, ("end",)):
            if element.tag != _W + "style":
                continue
            style_id = element.get(_W + "styleId") or ""
            name = element.find(_W + "name")
            level = element.find(f"{_W}pPr/{_W}outlineLvl")
            if ((name is not None and _HEADING_STYLE_NAME.match(name.get(_W + "val") or ""))
                    or (level is not None and (level.get(_W + "val") or "9").isdigit()
                        and int(level.get(_W + "val") or "9") < 9)):
                ids.add(style_id)
            element.clear()
    return ids


def _declared_pages(archive: zipfile.ZipFile) -> int | None:
    """The page count Word stored when it last saved the file (absent from generated files)."""
    try:
        with archive.open("docProps/app.xml") as handle:
            for _, element in _iterparse(handle, ("end",)):
                if element.tag == _EXTENDED_PROPERTIES + "Pages" and (element.text or "").strip().isdigit():
                    return int((element.text or "").strip())
    except (KeyError, ElementTree.ParseError):
        return None
    return None


class _Paragraph:
    __slots__ = ("heading", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.heading = False


class _Table:
    __slots__ = ("cells", "paragraphs")

    def __init__(self) -> None:
        self.cells: list[str] = []
        self.paragraphs: list[str] = []


def blocks(path: Path, parsed: Parsed, max_pages: int | None) -> Iterator[Block]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise DocumentParseError("The file is not a valid .docx (password-protected documents are not supported)",
                                 details={"reason": "invalid_docx"}) from exc
    with archive:
        try:
            info = archive.getinfo("word/document.xml")
        except KeyError as exc:
            raise DocumentParseError("The file is not a Word document (no word/document.xml)",
                                     details={"reason": "invalid_docx"}) from exc
        if info.file_size > MAX_DOCX_XML_BYTES:
            raise DocumentTooLarge(f"The document's text part is {info.file_size} bytes uncompressed; "
                                   f"at most {MAX_DOCX_XML_BYTES} are read", details={"max_bytes": MAX_DOCX_XML_BYTES})
        try:
            headings = _heading_styles(archive)
            parsed.pages = _declared_pages(archive)
            with archive.open(info) as handle:
                yield from _docx_body(handle, headings)
        except (ElementTree.ParseError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise DocumentParseError("The .docx file is damaged and could not be read",
                                     details={"reason": "invalid_docx"}) from exc


def _docx_body(handle: IO[bytes], headings: set[str]) -> Iterator[Block]:
    """Paragraphs in order (text boxes included once: the Fallback copy of alternate content is
    skipped; deleted revisions and field codes are not text), headings flagged by style or
    outline level, each table row one block with its cells separated by " | " (a nested
    table's rows go into the enclosing cell). Every finished element is detached from its
    parent, so the tree never grows with the document."""
    ancestors: list[Any] = []
    paragraphs: list[_Paragraph] = []
    tables: list[_Table] = []
    fallback = 0
    for event, element in _iterparse(handle, ("start", "end")):
        tag = element.tag
        if event == "start":
            ancestors.append(element)
            if tag == _MC_FALLBACK:
                fallback += 1
            elif fallback:
                continue
            elif tag == _P:
                paragraphs.append(_Paragraph())
            elif tag == _TBL:
                tables.append(_Table())
            elif tag == _TR and tables:
                tables[-1].cells = []
            elif tag == _TC and tables:
                tables[-1].paragraphs = []
            continue
        ancestors.pop()
        if tag == _MC_FALLBACK:
            fallback -= 1
        elif fallback:
            continue
        elif tag == _T:
            if paragraphs and element.text:
                paragraphs[-1].parts.append(element.text)
        elif tag in _RUN_TEXT:
            if paragraphs:
                paragraphs[-1].parts.append(_RUN_TEXT[tag])
        elif tag == _W + "pStyle":
            style = element.get(_W + "val") or ""
            if paragraphs and (style in headings or _HEADING_STYLE_ID.match(style)):
                paragraphs[-1].heading = True
        elif tag == _W + "outlineLvl":
            level = element.get(_W + "val") or "9"
            if paragraphs and level.isdigit() and int(level) < 9:
                paragraphs[-1].heading = True
        elif tag == _P and paragraphs:
            paragraph = paragraphs.pop()
            text = "".join(paragraph.parts)
            if tables and not paragraphs:
                tables[-1].paragraphs.append(text)
            elif paragraphs:  # a text box inside a paragraph: its own block
                if text.strip():
                    yield from (Block(part) for part in bounded(text))
            elif text.strip():
                yield from (Block(part, heading=paragraph.heading) for part in bounded(text))
        elif tag == _TC and tables:
            cell = "\n".join(text for text in tables[-1].paragraphs if text.strip())
            tables[-1].cells.append(cell)
        elif tag == _TR and tables:
            row = " | ".join(tables[-1].cells)
            if len(tables) > 1:
                tables[-2].paragraphs.append(row)
            elif row.strip(" |"):
                yield from (Block(part) for part in bounded(row))
        elif tag == _TBL and tables:
            tables.pop()
        if tag in (_P, _TR, _TBL) or len(ancestors) == 2:
            element.clear()
            if ancestors:
                with contextlib.suppress(ValueError):
                    ancestors[-1].remove(element)
