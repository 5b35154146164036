"""Plain text: paragraphs, encodings (BOMs, UTF-16/32, legacy Chinese and Western), bounded
blocks from huge lines, flat memory, empty documents, closing early."""

from __future__ import annotations

import codecs
import tracemalloc
from pathlib import Path

import pytest

from shared.knowledge.errors import EmptyDocument
from shared.knowledge.parsing import MAX_BLOCK_CHARS, decoding, parse
from shared.knowledge.types import Block
from tests.support.documents import make_text
from tests.unit.knowledge.parsing.support import blocks_of, write


class TestText:
    def test_paragraphs(self, tmp_path: Path) -> None:
        path = write(tmp_path, "a.txt", "First line\nsecond line\n\n\n  \nSecond paragraph\n")
        assert blocks_of(path, "txt") == [Block("First line\nsecond line"), Block("Second paragraph")]

    def test_utf8_bom_is_not_text(self, tmp_path: Path) -> None:
        path = write(tmp_path, "a.txt", codecs.BOM_UTF8 + "Zoë — 知识".encode())
        assert blocks_of(path, "txt") == [Block("Zoë — 知识")]

    @pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
    def test_utf16_and_utf32_with_or_without_bom(self, tmp_path: Path, encoding: str) -> None:
        text = "Grüße, 世界!\r\n\r\nZweiter Absatz."
        path = write(tmp_path, "a.txt", text.encode(encoding))
        assert blocks_of(path, "txt") == [Block("Grüße, 世界!"), Block("Zweiter Absatz.")]

    def test_invalid_bytes_are_replaced_not_fatal(self, tmp_path: Path) -> None:
        path = write(tmp_path, "a.txt", b"caf\xc3\xa9 ok " * 50 + b"bad \xff\xfe byte")
        [block] = blocks_of(path, "txt")
        assert block.text.startswith("café ok")
        assert block.text.endswith("bad \ufffd\ufffd byte")

    def test_legacy_chinese_gb18030(self, tmp_path: Path) -> None:
        text = "知识库支持中文文档的检索。" * 40
        path = write(tmp_path, "a.txt", text.encode("gb18030"))
        assert blocks_of(path, "txt") == [Block(text)]

    def test_legacy_western_cp1252(self, tmp_path: Path) -> None:
        text = "Grüße aus München, für Sie. " * 40
        path = write(tmp_path, "a.txt", text.encode("cp1252"))
        assert blocks_of(path, "txt") == [Block(text)]

    def test_crlf_split_across_reads(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(decoding, "READ_BYTES", 4)
        path = write(tmp_path, "a.txt", b"one\r\ntwo\r\n\r\nthree\r\n")  # reads: "one\r", "\ntwo", ...
        assert blocks_of(path, "txt") == [Block("one\ntwo"), Block("three")]

    def test_one_huge_line_comes_out_in_boundedblocks_of(self, tmp_path: Path) -> None:
        path = make_text(tmp_path / "line.txt", 600_000, paragraphs=False)
        blocks = blocks_of(path, "txt")
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
        path = write(tmp_path, "a.txt", " \n\n\t\n")
        with pytest.raises(EmptyDocument) as caught:
            blocks_of(path, "txt")
        assert caught.value.code == "document_empty"

    def test_close_releases_the_file_early(self, tmp_path: Path) -> None:
        path = make_text(tmp_path / "a.txt", 100_000)
        with parse(path, "txt") as blocks:
            first = next(blocks)
        assert first.text
        assert list(blocks) == []
