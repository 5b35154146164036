"""document_extractor: the text of a file, or of each file of a list (Dify's
``document-extractor``), read with the knowledge parsers ingestion uses
(:mod:`shared.knowledge.parsing`: plain text, Markdown, HTML, PDF, .docx).

A file is a **file reference**, an object with exactly one source and optional names::

    {"url": "https://…"}                         fetched through the safe fetch path
    {"s3_key": "tenants/<tenant id>/…"}          an object of the uploads bucket, under the run's tenant
    {"content_base64": "…"}                      the bytes themselves
    + "filename": "report.pdf", "mime_type": "application/pdf"   (both optional)

Other fields (a size, an id) are ignored. The format is the knowledge parsers' choice: by
``mime_type`` (else, for a URL, the response's content type), then by the file name's
extension (``filename``, else the URL's or key's last segment). URLs go through
:mod:`shared.workflows.fetch` (the egress policy: no private or metadata addresses, redirects
checked, the size capped), never directly. An ``s3_key`` outside ``tenants/<the run's
tenant>/`` is refused before anything is read.

Each file is at most :data:`MAX_FILE_BYTES`, a PDF at most :data:`MAX_PDF_PAGES` pages, a node
at most :data:`MAX_FILES` files and :data:`MAX_TEXT_CHARS` characters of text. The text is the
parsed blocks (paragraphs, headings, table rows) one after the other, a blank line between
them; a file with no text (a scanned PDF) gives ``""``. Output ``text``: a string, or with
``is_array_file`` a list of strings in the files' order.

Failures name the file: ``document_extractor_invalid_file`` (not a file reference),
``document_extractor_file_not_found``, ``document_extractor_file_too_large``,
``document_extractor_fetch_failed`` (the URL answered outside 2xx), ``document_extractor_refused_key``,
``document_extractor_text_too_large``; the parsers' own codes (``document_unsupported_type``,
``document_parse_failed``...) and the fetch path's (``http_request_refused``,
``http_request_timeout``...) are kept.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from shared.workflows.configs import DocumentExtractorConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, selector_key

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FILES = 20
MAX_PDF_PAGES = 500
MAX_TEXT_CHARS = 1_000_000
SOURCES = ("url", "s3_key", "content_base64")


@dataclass(frozen=True)
class FileReference:
    source: str  # one of SOURCES
    value: str
    filename: str
    mime_type: str

    def summary(self) -> dict[str, Any]:
        """What a run records of the file (never its bytes)."""
        entry: dict[str, Any] = {"source": self.source, "filename": self.filename, "mime_type": self.mime_type}
        if self.source != "content_base64":
            entry[self.source] = self.value
        return entry

    def label(self, position: int) -> str:
        name = self.filename or (self.value if self.source != "content_base64" else "")
        return f"file {position + 1}" + (f" ({name})" if name else "")


def file_reference(value: Any, position: int) -> FileReference:
    """``value`` read as a file reference; NodeFailure saying what is wrong with it."""
    where = f"file {position + 1}"
    if not isinstance(value, dict):
        raise NodeFailure("document_extractor_invalid_file",
                          f"{where} is a {type(value).__name__}, not a file reference: give an object with one of "
                          f"{', '.join(SOURCES)} (and optionally filename, mime_type)")
    given = [source for source in SOURCES if value.get(source) is not None]
    if len(given) != 1:
        raise NodeFailure("document_extractor_invalid_file",
                          f"{where} must have exactly one of {', '.join(SOURCES)}"
                          + (f" (it has {', '.join(given)})" if given else ""))
    names = {name: value.get(name) for name in ("filename", "mime_type")}
    for name, text in (*names.items(), (given[0], value[given[0]])):
        if text is not None and not isinstance(text, str):
            raise NodeFailure("document_extractor_invalid_file", f"{where}: {name} must be a string")
    return FileReference(given[0], value[given[0]], names["filename"] or "", names["mime_type"] or "")


def _files(call: NodeCall[DocumentExtractorConfig]) -> list[FileReference]:
    config = call.config
    value = call.pool.get_or_none(config.variable_selector)
    where = selector_key(config.variable_selector)
    if value is None:
        raise NodeFailure("document_extractor_invalid_file", f"{where} has no value in this run: give it a file")
    if config.is_array_file != isinstance(value, list):
        raise NodeFailure("document_extractor_invalid_file",
                          f"{where} holds a list of files: set is_array_file" if isinstance(value, list) else
                          f"{where} holds one file, not a list: unset is_array_file")
    values = value if isinstance(value, list) else [value]
    if len(values) > MAX_FILES:
        raise NodeFailure("document_extractor_too_many_files",
                          f"{where} holds {len(values)} files; a node extracts at most {MAX_FILES}")
    return [file_reference(item, position) for position, item in enumerate(values)]


def resolve(call: NodeCall[DocumentExtractorConfig]) -> dict[str, Any]:
    try:
        files = _files(call)
    except NodeFailure:
        # Recorded as it is only when it is no file (execute reports why); never base64 bytes.
        value = call.pool.get_or_none(call.config.variable_selector)
        return {"files": None if value is None else "(not a file reference)"}
    return {"files": [item.summary() for item in files]}


def _tenant_prefix(call: NodeCall[DocumentExtractorConfig]) -> str:
    return f"tenants/{call.context.tenant_id}/"


def _load(call: NodeCall[DocumentExtractorConfig], item: FileReference, label: str,
          spool: IO[bytes]) -> tuple[str, str]:
    """Write the file's bytes into ``spool``; its (content type, name) as best known."""
    if item.source == "content_base64":
        if len(item.value) > (MAX_FILE_BYTES * 4) // 3 + 4:
            raise _too_large(label)
        try:
            data = base64.b64decode(item.value, validate=True)
        except (binascii.Error, ValueError):
            raise NodeFailure("document_extractor_invalid_file", f"{label}: content_base64 is not base64") from None
        spool.write(data)
        return item.mime_type, item.filename
    if item.source == "s3_key":
        return item.mime_type, _load_key(call, item, label, spool)
    return _load_url(call, item, label, spool)


def _load_key(call: NodeCall[DocumentExtractorConfig], item: FileReference, label: str, spool: IO[bytes]) -> str:
    from shared.workflows.engine.files import FileTooLarge

    key = item.value
    prefix = _tenant_prefix(call)
    if not key.startswith(prefix) or any(part in ("", ".", "..") for part in key[len(prefix):].split("/")):
        raise NodeFailure("document_extractor_refused_key",
                          f"{label}: the key must name an object under {prefix} (the tenant's own files)")
    files = call.ports.files
    if files is None:
        raise NodeFailure("document_extractor_files_unavailable",
                          f"{label}: files by s3_key are not available in this deployment (no uploads bucket); "
                          "give the file's url or content_base64")
    try:
        files.download(key, spool, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise NodeFailure("document_extractor_file_not_found", f"{label}: there is no file at {key}") from None
    except FileTooLarge:
        raise _too_large(label) from None
    return item.filename or PurePosixPath(key).name


def _load_url(call: NodeCall[DocumentExtractorConfig], item: FileReference, label: str,
              spool: IO[bytes]) -> tuple[str, str]:
    from shared.workflows.fetch.ports import FetchError, FetchRequest, FetchTimeouts, FetchTooLarge

    url = item.value.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise NodeFailure("document_extractor_invalid_file", f"{label}: the url must be http:// or https://")
    budget = max(call.timeout_s, 1.0)
    request = FetchRequest(method="GET", url=url, max_response_bytes=MAX_FILE_BYTES,
                           timeouts=FetchTimeouts(connect_s=min(10.0, budget), read_s=min(60.0, budget),
                                                  write_s=min(20.0, budget), total_s=budget))
    try:
        response = call.ports.fetcher.fetch(request)
    except FetchTooLarge:
        raise _too_large(label) from None
    except FetchError as exc:
        raise NodeFailure(exc.code, f"{label}: {exc.message}") from exc
    if not 200 <= response.status_code < 300:
        raise NodeFailure("document_extractor_fetch_failed",
                          f"{label}: the server answered HTTP {response.status_code}; check the URL (a link that "
                          "needs no login, still valid)", details={"status_code": response.status_code})
    spool.write(response.body)
    name = item.filename or unquote(PurePosixPath(urlsplit(response.url or url).path).name)
    return item.mime_type or response.headers.get("content-type", ""), name


def _too_large(label: str) -> NodeFailure:
    return NodeFailure("document_extractor_file_too_large",
                       f"{label} is larger than the {MAX_FILE_BYTES // (1024 * 1024)} MB a node extracts")


def _text(path: Path, content_type: str, name: str, label: str) -> str:
    from shared.knowledge.errors import DocumentError, EmptyDocument
    from shared.knowledge.parsing import detect_format, parse

    try:
        fmt = detect_format(content_type, name)
        with parse(path, fmt, max_pages=MAX_PDF_PAGES) as blocks:
            return "\n\n".join(block.text for block in blocks)
    except EmptyDocument:
        return ""
    except DocumentError as exc:
        raise NodeFailure(exc.code, f"{label}: {exc.message}", details=dict(exc.details)) from exc


def execute(call: NodeCall[DocumentExtractorConfig], inputs: dict[str, Any]) -> NodeOutput:
    files = _files(call)
    texts: list[str] = []
    total = 0
    for position, item in enumerate(files):
        if call.cancelled.is_set():
            break  # the attempt timed out: its result is no longer awaited
        label = item.label(position)
        with tempfile.NamedTemporaryFile(prefix="stratus-extract-") as spool:
            content_type, name = _load(call, item, label, spool)
            spool.flush()
            text = _text(Path(spool.name), content_type, name, label)
        total += len(text)
        if total > MAX_TEXT_CHARS:
            raise NodeFailure("document_extractor_text_too_large",
                              f"The files hold more than {MAX_TEXT_CHARS} characters of text (past {label}); "
                              "extract fewer or smaller files")
        texts.append(text)
    return NodeOutput({"text": texts if call.config.is_array_file else (texts[0] if texts else "")})


EXECUTOR = NodeExecutor(resolve, execute)
