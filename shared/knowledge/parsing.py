"""Document parsers: a file on disk in, a stream of :class:`Block` out, in reading order.

Nothing holds a whole document in memory: text formats are decoded incrementally from 64 KiB
reads, HTML is fed to the standard library's parser in the same pieces, PDF pages are loaded
and closed one at a time (pypdfium2, native PDFium), and a .docx's ``word/document.xml`` is
read with ``iterparse``, each paragraph released once read. Blocks are paragraphs (a PDF: the
paragraphs of a page) and never longer than :data:`MAX_BLOCK_CHARS`, whatever the input (a
50 MB file on one line included), so memory stays flat (docs/adr/0024-parsing-and-chunking.md).

Usage::

    with parse(path, detect_format(content_type, name)) as blocks:
        for chunk in chunk_blocks(blocks, config, counter):
            ...
    blocks.pages  # PDF: pages read; .docx: the page count Word saved; else None

A document with no text raises :class:`EmptyDocument` once iteration ends; a damaged or
password-protected file :class:`DocumentParseError`; both are :class:`DocumentError` s (the
document is marked failed, no retry helps).
"""

from __future__ import annotations

import codecs
import contextlib
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from types import MappingProxyType, TracebackType
from typing import IO, Any, Literal
from xml.etree import ElementTree

from shared.knowledge.errors import DocumentParseError, DocumentTooLarge, EmptyDocument, UnsupportedDocumentType
from shared.knowledge.types import Block

FORMATS = ("txt", "md", "html", "pdf", "docx")

# The content types the upload API accepts, and the format each one means.
SUPPORTED_CONTENT_TYPES: Mapping[str, str] = MappingProxyType({
    "text/plain": "txt",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
})
EXTENSIONS: Mapping[str, str] = MappingProxyType({
    ".txt": "txt", ".text": "txt",
    ".md": "md", ".markdown": "md", ".mdown": "md", ".mkd": "md",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
})

# ~4,000 wordpieces of English: a long paragraph, far below any memory concern, and small
# enough that a chunker tokenizing a block at a time stays flat.
MAX_BLOCK_CHARS = 16_384
READ_BYTES = 64 * 1024
# word/document.xml inflated: beyond this the file is refused before reading (zip bombs).
MAX_DOCX_XML_BYTES = 512 * 1024 * 1024


def detect_format(content_type: str, name: str) -> str:
    """``txt``, ``md``, ``html``, ``pdf`` or ``docx``: by the content type, by the file name's
    extension when the type is missing, generic (``application/octet-stream``) or unknown.
    ``text/plain`` with a markdown extension is markdown (browsers send it for ``.md``)."""
    media = content_type.split(";", 1)[0].strip().lower()
    suffix = PurePosixPath(name.strip()).suffix.lower()
    by_type, by_name = SUPPORTED_CONTENT_TYPES.get(media), EXTENSIONS.get(suffix)
    if by_type == "txt" and by_name == "md":
        return "md"
    if by_type:
        return by_type
    if by_name:
        return by_name
    given = f"content type {media or '(none)'!r}" + (f" and extension {suffix!r}" if suffix else ", no extension")
    raise UnsupportedDocumentType(
        f"Unsupported document: {given}. Supported: {', '.join(FORMATS)} "
        f"({', '.join(sorted(SUPPORTED_CONTENT_TYPES))})",
        details={"content_type": media, "name": name, "supported_content_types": sorted(SUPPORTED_CONTENT_TYPES),
                 "supported_extensions": sorted(EXTENSIONS)})


class Parsed(Iterator[Block]):
    """The blocks of one document, read lazily. ``pages``: PDF pages read so far (all of them
    once iteration ends), the page count a .docx declares, ``None`` for formats without
    pages; ``blocks`` and ``characters`` count what was yielded. Close it (or use ``with``) to
    release the file early, e.g. after a preview."""

    def __init__(self, fmt: str, source: Callable[[Parsed], Iterator[Block]]) -> None:
        self.format = fmt
        self.pages: int | None = None
        self.blocks = 0
        self.characters = 0
        self._source = source(self)

    def __iter__(self) -> Parsed:
        return self

    def __next__(self) -> Block:
        try:
            block = next(self._source)
        except StopIteration:
            if self.blocks == 0:
                raise _empty(self.format) from None
            raise
        self.blocks += 1
        self.characters += len(block.text)
        return block

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Parsed:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _empty(fmt: str) -> EmptyDocument:
    if fmt == "pdf":
        return EmptyDocument("The PDF contains no extractable text (scanned pages would need OCR, "
                             "which is not supported)")
    return EmptyDocument()


def parse(path: Path, fmt: str, *, max_pages: int | None = None) -> Parsed:
    """Blocks of the file at ``path`` read as ``fmt`` (see :func:`detect_format`). A PDF with
    more than ``max_pages`` pages raises :class:`DocumentTooLarge` before any page is read."""
    sources: dict[str, Callable[[Parsed], Iterator[Block]]] = {
        "txt": lambda parsed: _text_blocks(_lines(_decoded(path))),
        "md": lambda parsed: _markdown_blocks(_lines(_decoded(path))),
        "html": lambda parsed: _html_blocks(path),
        "pdf": lambda parsed: _pdf_blocks(path, parsed, max_pages),
        "docx": lambda parsed: _docx_blocks(path, parsed),
    }
    if fmt not in sources:
        raise UnsupportedDocumentType(f"Unsupported document format {fmt!r}; supported: {', '.join(FORMATS)}",
                                      details={"format": fmt, "supported": list(FORMATS)})
    return Parsed(fmt, sources[fmt])


# --- Decoding --------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),  # before UTF-16: same prefix
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)


def _sniff(head: bytes, declared: str | None = None) -> tuple[str, int]:
    """(encoding, bytes of BOM to skip). A BOM wins, then UTF-16 without one (NUL bytes on one
    side), then a declared charset (HTML), then UTF-8 unless the sample is clearly something
    else: GB18030 for Chinese legacy files, cp1252 for Western ones. UTF-8 with a few bad
    bytes stays UTF-8 (they become U+FFFD)."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    sample = head[:4096]
    half = len(sample) // 2
    if half >= 2:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if odd > 0.3 * half and even < 0.05 * half:
            return "utf-16-le", 0
        if even > 0.3 * half and odd < 0.05 * half:
            return "utf-16-be", 0
    if declared:
        try:
            return codecs.lookup(declared).name, 0
        except LookupError:
            pass
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head, final=False)
    bad = text.count("\ufffd") - head.count(b"\xef\xbf\xbd")
    if bad <= max(1, len(text) // 100):
        return "utf-8", 0
    try:
        legacy = codecs.getincrementaldecoder("gb18030")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252", 0
    wide = [ch for ch in legacy if ord(ch) > 0x7F]
    # Text in GB18030 is mostly GB2312's common characters; cp1252 text decoded as GB18030
    # lands in the rare extension ranges instead.
    common = sum(1 for ch in wide if _encodes(ch, "gb2312"))
    return ("gb18030", 0) if wide and common >= 0.8 * len(wide) else ("cp1252", 0)


def _encodes(ch: str, encoding: str) -> bool:
    try:
        ch.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _decoded(path: Path, *, html: bool = False) -> Iterator[str]:
    """The file's text in pieces of ~64 KiB; undecodable bytes become U+FFFD."""
    with path.open("rb") as handle:
        head = handle.read(READ_BYTES)
        declared = None
        if html and (match := _META_CHARSET.search(head[:4096])):
            declared = match.group(1).decode("ascii")
        encoding, skip = _sniff(head, declared)
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        data = head[skip:]
        while data:
            text = decoder.decode(data)
            if text:
                yield text
            data = handle.read(READ_BYTES)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail


_LINE_BREAKS = re.compile(r"\r\n|[\n\r\x0b\x0c\x85\u2028\u2029]")


def _lines(pieces: Iterable[str]) -> Iterator[str]:
    """Lines without their terminators. A line longer than MAX_BLOCK_CHARS comes out in
    pieces (cut after whitespace where there is some), so one huge line never accumulates."""
    pending = ""
    for piece in pieces:
        pending += piece
        # A trailing "\r" may be the first half of a "\r\n" split across reads: held back.
        held = pending.endswith("\r")
        parts = _LINE_BREAKS.split(pending[:-1] if held else pending)
        pending = parts.pop() + ("\r" if held else "")
        for line in parts:
            if len(line) > MAX_BLOCK_CHARS:
                yield from _bounded(line)
            else:
                yield line  # blank lines too: they end paragraphs
        while len(pending) > MAX_BLOCK_CHARS:
            head, pending = _cut(pending, MAX_BLOCK_CHARS)
            yield head
    if pending.endswith("\r"):
        pending = pending[:-1]
    if pending:
        yield from _bounded(pending)


# Latin sentence ends need a following space ("3.14" is no end); full-width CJK ones do not.
_SENTENCE_END = re.compile("[.!?;]\\s|[\u3002\uff01\uff1f\uff1b]")


def _cut(text: str, limit: int) -> tuple[str, str]:
    """Split ``text`` (longer than ``limit``) at most ``limit`` characters in: after the last
    sentence end in the final quarter, else after the last whitespace, else exactly there."""
    floor = limit * 3 // 4
    window = text[floor:limit]
    ends = list(_SENTENCE_END.finditer(window))
    if ends:
        at = floor + ends[-1].end()
    else:
        space = max(window.rfind(" "), window.rfind("\t"), window.rfind("\u3000"))
        at = floor + space + 1 if space >= 0 else limit
    return text[:at], text[at:]


def _bounded(text: str, limit: int = MAX_BLOCK_CHARS) -> Iterator[str]:
    while len(text) > limit:
        head, text = _cut(text, limit)
        yield head
    if text:
        yield text


# --- Plain text ------------------------------------------------------------------------


def _text_blocks(lines: Iterable[str]) -> Iterator[Block]:
    """Paragraphs: runs of non-blank lines, joined by newlines."""
    paragraph: list[str] = []
    size = 0
    for line in lines:
        if not line.strip():
            if paragraph:
                yield Block("\n".join(paragraph))
                paragraph, size = [], 0
            continue
        if paragraph and size + len(line) > MAX_BLOCK_CHARS:
            yield Block("\n".join(paragraph))
            paragraph, size = [], 0
        paragraph.append(line)
        size += len(line) + 1
    if paragraph:
        yield Block("\n".join(paragraph))


# --- Markdown --------------------------------------------------------------------------

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


def _markdown_blocks(lines: Iterable[str]) -> Iterator[Block]:
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

    for raw in lines:
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


# --- HTML ------------------------------------------------------------------------------

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
            head, rest = _cut(joined, MAX_BLOCK_CHARS)
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
    for text in _decoded(path, html=True):
        parser.feed(text)
        yield from parser.blocks
        parser.blocks.clear()
    parser.close()
    yield from parser.blocks


# --- PDF -------------------------------------------------------------------------------

_PDF_SOFT_HYPHENS = ("\x02", "\u00ad", "\ufffe")
# Sentence ends and closing quotes or brackets, Latin and full-width CJK.
_CLOSES_PARAGRAPH = tuple(".!?:;)\"'\u3002\uff01\uff1f\uff1a\uff1b\u2026\u201d\u2019\u300d\u300f")


def _is_cjk(ch: str) -> bool:
    return "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uf900" <= ch <= "\uffef"


def _pdf_paragraphs(text: str, page: int) -> Iterator[Block]:
    """PDF text is lines at the page's width: rejoin them into paragraphs. A line ends a
    paragraph when it is blank, or clearly shorter than the page's usual line (the last line
    of a paragraph, a title, a list item); other line breaks are wrapping and become spaces
    (nothing between CJK characters; nothing after a hyphen, which is kept)."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lengths = sorted(len(line) for line in lines if line)
    if not lengths:
        return
    usual = lengths[(len(lengths) * 4) // 5]  # 80th percentile: robust to a few wide lines
    paragraph: list[str] = []
    size = 0

    def block() -> Block:
        return Block("".join(paragraph), page=page)

    for index, line in enumerate(lines):
        if not line:
            if paragraph:
                yield block()
                paragraph, size = [], 0
            continue
        if paragraph and size + len(line) > MAX_BLOCK_CHARS:
            yield block()
            paragraph, size = [], 0
        if paragraph:
            previous = paragraph[-1]
            if previous.endswith(_PDF_SOFT_HYPHENS):
                paragraph[-1] = previous[:-1]
            elif not (previous.endswith("-") or (_is_cjk(previous[-1]) and _is_cjk(line[0]))):
                paragraph.append(" ")
        paragraph.append(line)
        size += len(line) + 1
        last = index == len(lines) - 1
        if not last and (len(line) < 0.75 * usual or (len(line) < 0.9 * usual and line.endswith(_CLOSES_PARAGRAPH))):
            yield block()
            paragraph, size = [], 0
    if paragraph:
        yield block()


def _pdf_blocks(path: Path, parsed: Parsed, max_pages: int | None) -> Iterator[Block]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            raise DocumentParseError("The PDF is password-protected: remove the password and upload it again",
                                     details={"reason": "password_protected"}) from exc
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise DocumentParseError("The PDF uses an unsupported security handler",
                                     details={"reason": "unsupported_security"}) from exc
        if code == pdfium_c.FPDF_ERR_SUCCESS:  # it loaded, but has no pages
            raise EmptyDocument("The PDF has no pages") from exc
        raise DocumentParseError("The file is not a valid PDF or is damaged",
                                 details={"reason": "invalid_pdf"}) from exc
    try:
        total = len(document)
        if max_pages is not None and total > max_pages:
            raise DocumentTooLarge(f"The PDF has {total} pages; at most {max_pages} are allowed",
                                   details={"pages": total, "max_pages": max_pages})
        for index in range(total):
            try:
                page = document[index]
                try:
                    textpage = page.get_textpage()
                    try:
                        text = textpage.get_text_bounded()
                    finally:
                        textpage.close()
                finally:
                    page.close()
            except pdfium.PdfiumError as exc:
                raise DocumentParseError(f"Page {index + 1} of the PDF could not be read",
                                         details={"reason": "invalid_page", "page": index + 1}) from exc
            parsed.pages = index + 1
            yield from _pdf_paragraphs(text, index + 1)
    finally:
        document.close()


# --- DOCX ------------------------------------------------------------------------------

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


def _docx_blocks(path: Path, parsed: Parsed) -> Iterator[Block]:
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
                    yield from (Block(part) for part in _bounded(text))
            elif text.strip():
                yield from (Block(part, heading=paragraph.heading) for part in _bounded(text))
        elif tag == _TC and tables:
            cell = "\n".join(text for text in tables[-1].paragraphs if text.strip())
            tables[-1].cells.append(cell)
        elif tag == _TR and tables:
            row = " | ".join(tables[-1].cells)
            if len(tables) > 1:
                tables[-2].paragraphs.append(row)
            elif row.strip(" |"):
                yield from (Block(part) for part in _bounded(row))
        elif tag == _TBL and tables:
            tables.pop()
        if tag in (_P, _TR, _TBL) or len(ancestors) == 2:
            element.clear()
            if ancestors:
                with contextlib.suppress(ValueError):
                    ancestors[-1].remove(element)
