"""PDF: pages and paragraphs, page counts, and the errors a user sees for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.knowledge.errors import DocumentParseError, DocumentTooLarge, EmptyDocument
from shared.knowledge.parsing import parse
from shared.knowledge.types import Block
from tests.support.documents import make_pdf, page_marker
from tests.unit.knowledge.parsing.support import blocks_of, write


class TestPdf:
    def test_pages_and_paragraphs(self, tmp_path: Path) -> None:
        parsed = parse(make_pdf(tmp_path / "a.pdf", 3), "pdf")
        blocks = list(parsed)
        assert parsed.pages == 3
        assert (parsed.blocks, parsed.characters) == (len(blocks), sum(len(b.text) for b in blocks))
        assert {b.page for b in blocks} == {1, 2, 3}
        for page in (1, 2, 3):
            on_page = [b for b in blocks if b.page == page]
            assert on_page[0] == Block(f"Section {page}", page=page)
            # The marker starts the first paragraph of its page, and is on no other page.
            assert on_page[1].text.startswith(page_marker(page) + " ")
            assert all(page_marker(page) not in b.text for b in blocks if b.page != page)
        # Wrapped lines are rejoined into paragraphs.
        paragraphs = [b for b in blocks if not b.text.startswith("Section")]
        assert all("\n" not in b.text for b in paragraphs)
        assert max(len(b.text) for b in paragraphs) > 300
        assert all(b.text.endswith(".") for b in paragraphs)

    def test_page_count_grows_as_pages_are_read(self, tmp_path: Path) -> None:
        parsed = parse(make_pdf(tmp_path / "a.pdf", 2), "pdf")
        assert parsed.pages is None
        next(parsed)
        assert parsed.pages == 1
        list(parsed)
        assert parsed.pages == 2

    def test_password_protected(self, tmp_path: Path) -> None:
        path = make_pdf(tmp_path / "locked.pdf", 1, password="s3cret")
        with pytest.raises(DocumentParseError, match="password-protected") as caught:
            blocks_of(path, "pdf")
        assert caught.value.code == "document_parse_failed"
        assert caught.value.details["reason"] == "password_protected"

    @pytest.mark.parametrize("data", [b"", b"not a pdf at all", b"%PDF-1.7\n%garbage\x00\x01"])
    def test_corrupt(self, tmp_path: Path, data: bytes) -> None:
        with pytest.raises(DocumentParseError, match="not a valid PDF") as caught:
            blocks_of(write(tmp_path, "bad.pdf", data), "pdf")
        assert caught.value.code == "document_parse_failed"

    def test_too_many_pages(self, tmp_path: Path) -> None:
        with pytest.raises(DocumentTooLarge) as caught:
            list(parse(make_pdf(tmp_path / "a.pdf", 3), "pdf", max_pages=2))
        assert caught.value.code == "document_too_large"
        assert caught.value.details == {"pages": 3, "max_pages": 2}

    def test_no_text_layer(self, tmp_path: Path) -> None:
        from fpdf import FPDF

        pdf = FPDF()
        pdf.add_page()
        pdf.rect(20, 20, 100, 50, style="F")  # a "scan": drawing, no text
        pdf.output(str(tmp_path / "scan.pdf"))
        parsed = parse(tmp_path / "scan.pdf", "pdf")
        with pytest.raises(EmptyDocument, match="OCR"):
            list(parsed)
        assert parsed.pages == 1
