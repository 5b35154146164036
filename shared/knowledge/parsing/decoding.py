"""Bytes to bounded text, shared by the text formats: the encoding sniffed, the file decoded in
~64 KiB pieces, split into lines, and any line or run longer than :data:`MAX_BLOCK_CHARS` cut
(at a sentence end or whitespace where there is one), so no input accumulates in memory."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from shared.knowledge.errors import BinaryContent
from shared.knowledge.parsing.parsed import MAX_BLOCK_CHARS

READ_BYTES = 64 * 1024

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),  # before UTF-16: same prefix
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)


def sniff(head: bytes, declared: str | None = None) -> tuple[str, int]:
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


# Signatures of binary formats a client may send under a text type by mistake.
_BINARY_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"%PDF-", b"PK\x03\x04",
                 b"\x1f\x8b", b"\x7fELF", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"OggS", b"ID3", b"\x00\x00\x01\x00")
# C0 controls that text does not carry (tab, line and page breaks, escape are text's).
_CONTROL = frozenset(chr(c) for c in range(0x20)) - set("\t\n\r\x0b\x0c\x1b")


def looks_binary(text: str) -> bool:
    """Whether decoded text is really binary data: controls no text carries, or undecodable
    bytes, in more than a tenth of a sample."""
    sample = text[:4096]
    bad = sum(1 for ch in sample if ch in _CONTROL or ch == "\ufffd")
    return bad > max(2, len(sample) // 10)


def refuse_binary(head: bytes, encoding: str) -> None:
    """Raise :class:`BinaryContent` when a text document's first bytes are a binary file's:
    indexing them would fill the knowledge base with garbage."""
    if head.startswith(_BINARY_MAGIC):
        raise BinaryContent("The file is binary (its bytes are an image, archive or PDF, not text): "
                            "upload it with its real content type")
    if encoding.startswith(("utf-16", "utf-32")):
        return
    if b"\x00" in head[:4096] or looks_binary(head[:4096].decode(encoding, errors="replace")):
        raise BinaryContent()


def _encodes(ch: str, encoding: str) -> bool:
    try:
        ch.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def decoded(path: Path, *, html: bool = False) -> Iterator[str]:
    """The file's text in pieces of ~64 KiB; undecodable bytes become U+FFFD."""
    with path.open("rb") as handle:
        head = handle.read(READ_BYTES)
        declared = None
        if html and (match := _META_CHARSET.search(head[:4096])):
            declared = match.group(1).decode("ascii")
        encoding, skip = sniff(head, declared)
        refuse_binary(head[skip:], encoding)
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


def lines(pieces: Iterable[str]) -> Iterator[str]:
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
                yield from bounded(line)
            else:
                yield line  # blank lines too: they end paragraphs
        while len(pending) > MAX_BLOCK_CHARS:
            head, pending = cut(pending, MAX_BLOCK_CHARS)
            yield head
    if pending.endswith("\r"):
        pending = pending[:-1]
    if pending:
        yield from bounded(pending)


# Latin sentence ends need a following space ("3.14" is no end); full-width CJK ones do not.
_SENTENCE_END = re.compile("[.!?;]\\s|[\u3002\uff01\uff1f\uff1b]")


def cut(text: str, limit: int) -> tuple[str, str]:
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


def bounded(text: str, limit: int = MAX_BLOCK_CHARS) -> Iterator[str]:
    while len(text) > limit:
        head, text = cut(text, limit)
        yield head
    if text:
        yield text

