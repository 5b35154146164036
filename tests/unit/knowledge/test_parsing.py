"""Parsers: exact blocks for small inputs of every format, encodings, headings, pages, the
errors a user sees for bad files, and flat memory on large ones."""

from __future__ import annotations

import codecs
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from shared.knowledge import parsing
from shared.knowledge.errors import DocumentParseError, DocumentTooLarge, EmptyDocument, UnsupportedDocumentType
from shared.knowledge.parsing import MAX_BLOCK_CHARS, SUPPORTED_CONTENT_TYPES, detect_format, parse
from shared.knowledge.types import Block
from tests.support.documents import (
    Heading,
    Table,
    make_docx,
    make_html,
    make_markdown,
    make_pdf,
    make_text,
    page_marker,
)


def _blocks(path: Path, fmt: str) -> list[Block]:
    return list(parse(path, fmt))


def _write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- detect_format -----------------------------------------------------------------------


class TestDetectFormat:
    @pytest.mark.parametrize(("content_type", "name", "expected"), [
        ("text/plain", "notes.txt", "txt"),
        ("text/plain; charset=utf-8", "notes", "txt"),
        ("TEXT/MARKDOWN", "x", "md"),
        ("text/x-markdown", "x.bin", "md"),
        ("text/html; charset=iso-8859-1", "page.htm", "html"),
        ("application/pdf", "scan", "pdf"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "report", "docx"),
        # No type, a generic one or an unknown one: the extension decides.
        ("", "README.MD", "md"),
        ("application/octet-stream", "dir/report.docx", "docx"),
        ("binary/octet-stream", "a.b.pdf", "pdf"),
        ("application/x-unknown", "index.html", "html"),
        # Browsers send text/plain for .md files.
        ("text/plain", "README.md", "md"),
    ])
    def test_formats(self, content_type: str, name: str, expected: str) -> None:
        assert detect_format(content_type, name) == expected

    def test_unsupported_names_what_was_given_and_what_is_supported(self) -> None:
        with pytest.raises(UnsupportedDocumentType) as caught:
            detect_format("image/png", "photo.png")
        error = caught.value
        assert error.code == "document_unsupported_type"
        assert error.status == 422
        assert "'image/png'" in error.message and "'.png'" in error.message
        assert "application/pdf" in error.message and "docx" in error.message
        assert error.details["content_type"] == "image/png"
        assert ".md" in error.details["supported_extensions"]

    def test_no_type_no_extension(self) -> None:
        with pytest.raises(UnsupportedDocumentType, match="no extension"):
            detect_format("", "Makefile")

    def test_upload_content_types(self) -> None:
        required = {"text/plain", "text/markdown", "text/x-markdown", "text/html", "application/pdf",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
        assert required <= set(SUPPORTED_CONTENT_TYPES)
        assert set(SUPPORTED_CONTENT_TYPES.values()) == set(parsing.FORMATS)

    def test_parse_refuses_an_unknown_format(self, tmp_path: Path) -> None:
        with pytest.raises(UnsupportedDocumentType):
            parse(_write(tmp_path, "a.xls", "x"), "xls")


# --- Plain text and encodings ------------------------------------------------------------


class TestText:
    def test_paragraphs(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "a.txt", "First line\nsecond line\n\n\n  \nSecond paragraph\n")
        assert _blocks(path, "txt") == [Block("First line\nsecond line"), Block("Second paragraph")]

    def test_utf8_bom_is_not_text(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "a.txt", codecs.BOM_UTF8 + "Zoë — 知识".encode())
        assert _blocks(path, "txt") == [Block("Zoë — 知识")]

    @pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
    def test_utf16_and_utf32_with_or_without_bom(self, tmp_path: Path, encoding: str) -> None:
        text = "Grüße, 世界!\r\n\r\nZweiter Absatz."
        path = _write(tmp_path, "a.txt", text.encode(encoding))
        assert _blocks(path, "txt") == [Block("Grüße, 世界!"), Block("Zweiter Absatz.")]

    def test_invalid_bytes_are_replaced_not_fatal(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "a.txt", b"caf\xc3\xa9 ok " * 50 + b"bad \xff\xfe byte")
        [block] = _blocks(path, "txt")
        assert block.text.startswith("café ok")
        assert block.text.endswith("bad \ufffd\ufffd byte")

    def test_legacy_chinese_gb18030(self, tmp_path: Path) -> None:
        text = "知识库支持中文文档的检索。" * 40
        path = _write(tmp_path, "a.txt", text.encode("gb18030"))
        assert _blocks(path, "txt") == [Block(text)]

    def test_legacy_western_cp1252(self, tmp_path: Path) -> None:
        text = "Grüße aus München, für Sie. " * 40
        path = _write(tmp_path, "a.txt", text.encode("cp1252"))
        assert _blocks(path, "txt") == [Block(text)]

    def test_crlf_split_across_reads(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(parsing, "READ_BYTES", 4)
        path = _write(tmp_path, "a.txt", b"one\r\ntwo\r\n\r\nthree\r\n")  # reads: "one\r", "\ntwo", ...
        assert _blocks(path, "txt") == [Block("one\ntwo"), Block("three")]

    def test_one_huge_line_comes_out_in_bounded_blocks(self, tmp_path: Path) -> None:
        path = make_text(tmp_path / "line.txt", 600_000, paragraphs=False)
        blocks = _blocks(path, "txt")
        assert len(blocks) > 600_000 // MAX_BLOCK_CHARS
        assert max(len(b.text) for b in blocks) <= MAX_BLOCK_CHARS
        # Cut after whitespace (a sentence end when there is one): nothing lost, no word split.
        assert "".join(b.text for b in blocks) == path.read_text()
        assert all(b.text.endswith(" ") for b in blocks[:-1])

    def test_memory_stays_flat_on_a_large_file(self, tmp_path: Path) -> None:
        path = make_text(tmp_path / "big.txt", 4_000_000, paragraphs=False)
        tracemalloc.start()
        try:
            count = sum(len(block.text) for block in parse(path, "txt"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count >= 4_000_000
        assert peak < 1_500_000, peak  # the file is 4 MB: it was never held whole

    def test_empty_document(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "a.txt", " \n\n\t\n")
        with pytest.raises(EmptyDocument) as caught:
            _blocks(path, "txt")
        assert caught.value.code == "document_empty"

    def test_close_releases_the_file_early(self, tmp_path: Path) -> None:
        path = make_text(tmp_path / "a.txt", 100_000)
        with parse(path, "txt") as blocks:
            first = next(blocks)
        assert first.text
        assert list(blocks) == []


# --- Markdown ----------------------------------------------------------------------------

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
    def test_blocks(self, tmp_path: Path) -> None:
        assert _blocks(_write(tmp_path, "a.md", MARKDOWN), "md") == [
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
        blocks = _blocks(path, "md")
        headings = [b.text for b in blocks if b.heading]
        assert headings[:3] == ["Generated handbook", "Section 1", "Section 2"]
        text = "\n".join(b.text for b in blocks)
        assert "](" not in text and "<!--" not in text and "```" not in text and "**" not in text
        assert "def handler_2(event):" in text
        assert max(len(b.text) for b in blocks) <= MAX_BLOCK_CHARS


# --- HTML --------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>Not content</title><style>p { color: red }</style>
<script>var hidden = "<p>not text</p>";</script></head>
<body>
<nav><a href="/">Home</a></nav>
<h1>Main   <em>title</em></h1>
<p>First   paragraph with
<b>bold</b> &amp; entities &eacute; &#x4e2d;.<br>Second line.</p>
<div>Block <span>inline</span> <img src="a.png" alt="a chart"> end</div>
<ul><li>one</li><li>two</li></ul>
<table><tr><th>name</th><th>value</th></tr><tr><td>a</td><td>1</td></tr></table>
<pre>  keep
    indentation</pre>
<noscript>enable js</noscript>
<h2>Sub</h2>trailing text
</body></html>"""


class TestHtml:
    def test_blocks(self, tmp_path: Path) -> None:
        assert _blocks(_write(tmp_path, "a.html", HTML), "html") == [
            Block("Home"),
            Block("Main title", heading=True),
            Block("First paragraph with bold & entities é 中.\nSecond line."),
            Block("Block inline a chart end"),
            Block("one"),
            Block("two"),
            Block("name | value"),
            Block("a | 1"),
            Block("  keep\n    indentation"),
            Block("Sub", heading=True),
            Block("trailing text"),
        ]

    def test_declared_charset(self, tmp_path: Path) -> None:
        page = '<html><head><meta charset="windows-1252"></head><body><p>Café crème</p></body></html>'
        assert _blocks(_write(tmp_path, "a.html", page.encode("cp1252")), "html") == [Block("Café crème")]

    def test_generated_page(self, tmp_path: Path) -> None:
        blocks = _blocks(make_html(tmp_path / "a.html", 30), "html")
        assert [b.text for b in blocks if b.heading][:2] == ["Generated page", "Section 1"]
        text = " ".join(b.text for b in blocks)
        assert "do not index" not in text and "color" not in text
        assert "&amp;" not in text and " & " in text


# --- PDF ---------------------------------------------------------------------------------


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
            _blocks(path, "pdf")
        assert caught.value.code == "document_parse_failed"
        assert caught.value.details["reason"] == "password_protected"

    @pytest.mark.parametrize("data", [b"", b"not a pdf at all", b"%PDF-1.7\n%garbage\x00\x01"])
    def test_corrupt(self, tmp_path: Path, data: bytes) -> None:
        with pytest.raises(DocumentParseError, match="not a valid PDF") as caught:
            _blocks(_write(tmp_path, "bad.pdf", data), "pdf")
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


# --- DOCX --------------------------------------------------------------------------------

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
        assert _blocks(path, "docx") == [
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
        assert _blocks(_docx(tmp_path, body), "docx") == [
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
            _blocks(_write(tmp_path, f"{name}.docx", data), "docx")
        assert caught.value.code == "document_parse_failed"

    def test_zip_without_document(self, tmp_path: Path) -> None:
        path = tmp_path / "a.docx"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "hi")
        with pytest.raises(DocumentParseError, match="not a Word document"):
            _blocks(path, "docx")

    def test_malformed_xml(self, tmp_path: Path) -> None:
        path = _docx(tmp_path, "<w:p><w:r><w:t>unclosed</w:r></w:p>")
        with pytest.raises(DocumentParseError, match="damaged"):
            _blocks(path, "docx")

    def test_empty(self, tmp_path: Path) -> None:
        with pytest.raises(EmptyDocument):
            _blocks(_docx(tmp_path, "<w:p/><w:p><w:r><w:t> </w:t></w:r></w:p>", styles=True), "docx")

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
