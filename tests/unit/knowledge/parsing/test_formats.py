"""Formats: which one an upload is, by content type and extension; unknown ones refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.knowledge import parsing
from shared.knowledge.errors import UnsupportedDocumentType
from shared.knowledge.parsing import SUPPORTED_CONTENT_TYPES, detect_format, parse
from tests.unit.knowledge.parsing.support import write


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
            parse(write(tmp_path, "a.xls", "x"), "xls")
