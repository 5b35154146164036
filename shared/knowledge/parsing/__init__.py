"""Document parsers: a file on disk in, a stream of :class:`Block` out, in reading order.
One module per format (:mod:`.txt`, :mod:`.markdown`, :mod:`.html`, :mod:`.pdf`, :mod:`.docx`);
:func:`detect_format` picks the format of an upload, :func:`parse` runs its parser.

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

from shared.knowledge.parsing.dispatch import parse
from shared.knowledge.parsing.formats import EXTENSIONS, FORMATS, SUPPORTED_CONTENT_TYPES, detect_format
from shared.knowledge.parsing.parsed import MAX_BLOCK_CHARS, Parsed

__all__ = ["EXTENSIONS", "FORMATS", "MAX_BLOCK_CHARS", "SUPPORTED_CONTENT_TYPES", "Parsed", "detect_format", "parse"]
