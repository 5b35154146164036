"""DOCX: paragraphs, headings, tables, Word markup, damaged files and flat memory."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import pytest

from shared.knowledge.errors import DocumentParseError, EmptyDocument
from shared.knowledge.parsing import parse
from shared.knowledge.types import Block
from tests.support.documents import Heading, Table, make_docx
from tests.unit.knowledge.parsing.support import blocks_of, write

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
MC = 'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'


def _docx(tmp_path: Path, body: str, *, styles: bool = False) -> Path:
    path = tmp_path / "hand.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", f'<?xml version="1.0"?><w:document {W} {MC}><w:body>{body}'
                                              "</w:body></w:document>")
        if styles:
            archive.writestr("word/styles.xml", f"<w:styles {W}/>")
    return path


class TestDocx:
    def test_paragraphs_headings_and_tables(self, tmp_path: Path) -> None:
        path = make_docx(tmp_path / "a.docx", [
            Heading("Intro"), "First paragraph & more.", Heading("Details", 2), "Second\nline",
            Table([["name", "value"], ["a", "1"]]), "After the table.",
        ])
        assert blocks_of(path, "docx") == [
            Block("Intro", heading=True),
            Block("First paragraph & more."),
            Block("Details", heading=True),
            Block("Second\nline"),
            Block("name | value"),
            Block("a | 1"),
            Block("After the table."),
        ]

    def test_declared_pages(self, tmp_path: Path) -> None:
        parsed = parse(make_docx(tmp_path / "a.docx", ["text"], pages=7), "docx")
        list(parsed)
        assert parsed.pages == 7
        parsed = parse(make_docx(tmp_path / "b.docx", ["text"]), "docx")
        list(parsed)
        assert parsed.pages is None

    def test_word_markup(self, tmp_path: Path) -> None:
        body = (
            # Heading by style id when there is no styles.xml to name it; tabs and breaks.
            '<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Styled</w:t></w:r></w:p>'
            '<w:p><w:pPr><w:outlineLvl w:val="2"/></w:pPr><w:r><w:t>Outlined</w:t></w:r></w:p>'
            '<w:p><w:r><w:t>a</w:t><w:tab/><w:t>b</w:t><w:br/><w:t xml:space="preserve">c </w:t></w:r>'
            # Tracked deletion and field codes are not text; a hyperlink's runs are.
            '<w:del><w:r><w:delText>deleted</w:delText></w:r></w:del>'
            '<w:r><w:instrText>HYPERLINK "x"</w:instrText></w:r>'
            '<w:hyperlink><w:r><w:t>linked</w:t></w:r></w:hyperlink></w:p>'
            # A text box in alternate content: the Fallback copy must not double it.
            '<w:p><w:r><mc:AlternateContent><mc:Choice><w:drawing><w:txbxContent>'
            '<w:p><w:r><w:t>In the box</w:t></w:r></w:p></w:txbxContent></w:drawing></mc:Choice>'
            '<mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>In the box</w:t></w:r></w:p>'
            '</w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r>'
            '<w:r><w:t>Around the box</w:t></w:r></w:p>'
            # A nested table's row lands in the enclosing cell.
            '<w:tbl><w:tr><w:tc><w:p><w:r><w:t>outer</w:t></w:r></w:p></w:tc>'
            '<w:tc><w:tbl><w:tr><w:tc><w:p><w:r><w:t>x</w:t></w:r></w:p></w:tc>'
            '<w:tc><w:p><w:r><w:t>y</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:tc></w:tr></w:tbl>'
            '<w:p/>'
        )
        assert blocks_of(_docx(tmp_path, body), "docx") == [
            Block("Styled", heading=True),
            Block("Outlined", heading=True),
            Block("a\tb\nc linked"),
            Block("In the box"),
            Block("Around the box"),
            Block("outer | x | y"),
        ]

    @pytest.mark.parametrize(("name", "data"), [
        ("not-zip", b"PK\x03\x04 this is not really a zip"),
        ("ole", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512),  # an encrypted Office file
    ])
    def test_not_a_docx(self, tmp_path: Path, name: str, data: bytes) -> None:
        with pytest.raises(DocumentParseError, match=r"not a valid \.docx") as caught:
            blocks_of(write(tmp_path, f"{name}.docx", data), "docx")
        assert caught.value.code == "document_parse_failed"

    def test_zip_without_document(self, tmp_path: Path) -> None:
        path = tmp_path / "a.docx"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "hi")
        with pytest.raises(DocumentParseError, match="not a Word document"):
            blocks_of(path, "docx")

    def test_malformed_xml(self, tmp_path: Path) -> None:
        path = _docx(tmp_path, "<w:p><w:r><w:t>unclosed</w:r></w:p>")
        with pytest.raises(DocumentParseError, match="damaged"):
            blocks_of(path, "docx")

    def test_empty(self, tmp_path: Path) -> None:
        with pytest.raises(EmptyDocument):
            blocks_of(_docx(tmp_path, "<w:p/><w:p><w:r><w:t> </w:t></w:r></w:p>", styles=True), "docx")

    def test_memory_stays_flat_on_a_large_document(self, tmp_path: Path) -> None:
        path = make_docx(tmp_path / "big.docx", 6_000)
        with zipfile.ZipFile(path) as archive:
            xml_size = archive.getinfo("word/document.xml").file_size
        tracemalloc.start()
        try:
            blocks = sum(1 for _ in parse(path, "docx"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert blocks == 6_000 + 600
        assert xml_size > 3_000_000
        assert peak < 1_000_000, peak  # released paragraph by paragraph (kept: ~11 MB)
