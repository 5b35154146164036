"""The formats parsed, the content types and file extensions that name them, and
:func:`detect_format`, which picks one for an upload."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from types import MappingProxyType

from shared.knowledge.errors import UnsupportedDocumentType

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
