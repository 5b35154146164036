"""PDF: pages loaded and closed one at a time (pypdfium2, native PDFium, imported when a PDF is
first read), their wrapped lines rejoined into paragraphs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from shared.knowledge.errors import DocumentParseError, DocumentTooLarge, EmptyDocument
from shared.knowledge.parsing.parsed import MAX_BLOCK_CHARS, Parsed
from shared.knowledge.types import Block

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


def blocks(path: Path, parsed: Parsed, max_pages: int | None) -> Iterator[Block]:
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

