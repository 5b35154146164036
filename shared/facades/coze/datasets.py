"""Coze's datasets (knowledge) over Stratus's knowledge bases and document ingestion, as
``cozepy.datasets`` sends them: ``/v1/datasets`` (create, list, update, delete, document
progress) and ``/open_api/knowledge/document/{create,list,update,delete}``. No second
implementation: every call is one of the knowledge services'; indexing stays asynchronous
(the S3 event) and a document's status maps to Coze's: processing (0) while Stratus uploads,
parses, chunks and embeds, completed (1) once indexed, failed (9).

What Coze has and Stratus does not is refused with Coze's 4000, never ignored: table and image
datasets (``format_type`` 1, 2), web pages as documents (``web_url``), automatic updates.
``space_id`` is accepted and is the tenant; a dataset's icon (``file_id``) is accepted and not
kept. Documents arrive as ``file_base64`` with ``file_type``, or as ``source_file_id`` (a file
uploaded through ``/v1/files/upload``)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.facades.coze import wire
from shared.knowledge.errors import DocumentNotFound, KnowledgeBaseNotFound
from shared.validation import RequestModel

if TYPE_CHECKING:
    from shared.auth.principal import Principal
    from shared.knowledge.api import DocumentOut, KnowledgeBaseOut
    from shared.knowledge.types import ChunkingConfig

# Coze's dataset status and document statuses (cozepy.datasets.DatasetStatus, DocumentStatus). A
# knowledge base being deleted (asynchronously) shows as disabled until it is gone.
ENABLED, DISABLED = 1, 3
PROCESSING, COMPLETED, FAILED = 0, 1, 9
# Coze's document sources: a local file (base64), an uploaded file id.
LOCAL_FILE, UPLOAD_FILE_ID = 0, 5
MAX_DOCUMENTS = 10
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _invalid(message: str, code: str) -> wire.CozeError:
    return wire.CozeError(wire.INVALID_PARAM, message, code=code)


def _text_only(format_type: int | None) -> None:
    if format_type not in (None, 0):
        raise _invalid(f"format_type {format_type} is not supported here: Stratus datasets hold text documents "
                       "(format_type 0)", "coze_format_unsupported")


def kb_id(value: str) -> uuid.UUID:
    return wire.parse_id(value, KnowledgeBaseNotFound(details={"knowledge_base_id": value}))


def document_id(value: str) -> uuid.UUID:
    return wire.parse_id(value, DocumentNotFound(details={"document_id": value}))


# -- shapes (cozepy's models) ---------------------------------------------------------------------
class CozeChunkStrategy(RequestModel):
    """``cozepy.datasets.documents.DocumentChunkStrategy``: 0 automatic (the dataset's), 1 custom
    (``max_tokens`` per segment, cut at ``separator``; ``remove_extra_spaces`` collapses whitespace)."""

    # A separator is whitespace more often than not ("\n\n"): kept as sent.
    model_config = ConfigDict(**{**RequestModel.model_config, "str_strip_whitespace": False})

    chunk_type: int | None = Field(default=None, ge=0, le=1)
    caption_type: int | None = Field(default=None, ge=0, le=10)
    max_tokens: int | None = Field(default=None, ge=16, le=8192)
    remove_extra_spaces: bool | None = None
    remove_urls_emails: bool | None = None
    separator: str | None = Field(default=None, max_length=16)


class CozeChunkStrategyOut(BaseModel):
    chunk_type: int
    max_tokens: int
    remove_extra_spaces: bool
    separator: str


class CozeDataset(BaseModel):
    """``cozepy.datasets.Dataset``."""

    dataset_id: str
    name: str
    description: str
    space_id: str = Field(description="The tenant")
    status: int = Field(description="1: enabled; 3: being deleted")
    format_type: int = Field(description="0: text")
    can_edit: bool
    doc_count: int
    slice_count: int
    chunk_strategy: CozeChunkStrategyOut
    create_time: int
    update_time: int


class CozeDatasetList(BaseModel):
    total_count: int
    dataset_list: list[CozeDataset]


class CozeDatasetCreated(BaseModel):
    dataset_id: str


class CreateCozeDataset(RequestModel):
    name: Name
    space_id: str = Field(max_length=100, description="Accepted: the tenant is the space")
    format_type: int = Field(ge=0, le=2, description="0 (text) only: 1 (table) and 2 (image) are refused")
    description: str | None = Field(default=None, max_length=2000)
    file_id: str | None = Field(default=None, max_length=100, description="The icon: accepted, not kept")


class UpdateCozeDataset(RequestModel):
    name: Name
    description: str | None = Field(default=None, max_length=2000, description="Absent: emptied, as Coze does")
    file_id: str | None = Field(default=None, max_length=100, description="The icon: accepted, not kept")


class CozeEmpty(BaseModel):
    """An answer with nothing in it (cozepy's ``UpdateDatasetRes``, ``DeleteDocumentRes``…)."""


class CozeSourceInfo(RequestModel):
    file_base64: str | None = Field(default=None, max_length=140_000_000)
    file_type: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,10}$")
    web_url: str | None = Field(default=None, max_length=2000)
    source_file_id: str | None = Field(default=None, max_length=100)
    document_source: int | None = Field(default=None, ge=0, le=1000)


class CozeUpdateRule(RequestModel):
    update_type: int = Field(ge=0, le=1)
    update_interval: int = Field(ge=0, le=100_000)


class CozeDocumentBase(RequestModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    source_info: CozeSourceInfo
    update_rule: CozeUpdateRule | None = None


class CreateCozeDocuments(RequestModel):
    dataset_id: Id
    document_bases: list[CozeDocumentBase] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    chunk_strategy: CozeChunkStrategy | None = None
    format_type: int | None = Field(default=None, ge=0, le=2)


class ListCozeDocuments(RequestModel):
    dataset_id: Id
    page: int = Field(default=1, ge=1, le=1_000_000)
    size: int = Field(default=10, ge=1, le=100)


class UpdateCozeDocument(RequestModel):
    document_id: Id
    document_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)] | None = None
    update_rule: CozeUpdateRule | None = None


class DeleteCozeDocuments(RequestModel):
    document_ids: list[Id] = Field(min_length=1, max_length=100)


class DatasetProcess(RequestModel):
    document_ids: list[Id] = Field(min_length=1, max_length=100)


class CozeDocument(BaseModel):
    """``cozepy.datasets.documents.Document``."""

    document_id: str
    char_count: int = Field(description="Characters are not counted: the document's tokens")
    format_type: int
    hit_count: int
    name: str
    size: int
    slice_count: int
    source_type: int
    status: int = Field(description="0 processing, 1 completed, 9 failed")
    type: str = Field(description="The file's extension")
    update_interval: int
    update_type: int
    create_time: int
    update_time: int


class CozeDocumentList(BaseModel):
    document_infos: list[CozeDocument]
    total: int


class CozeDocumentsCreated(BaseModel):
    """The answer of ``document/create``: the documents at the top level (``cozepy`` reads
    ``document_infos`` there), in Coze's envelope."""

    code: int = 0
    msg: str = ""
    document_infos: list[CozeDocument]
    detail: wire.CozeDetail


class CozeProgress(BaseModel):
    """``cozepy.datasets.DocumentProgress``."""

    document_id: str
    url: str
    size: int
    type: str
    status: int
    progress: int
    update_type: int
    document_name: str
    remaining_time: int
    status_descript: str
    update_interval: int


class CozeProgressList(BaseModel):
    data: list[CozeProgress]


# -- translation ----------------------------------------------------------------------------------
def coze_status(status: str) -> int:
    return COMPLETED if status == "indexed" else FAILED if status == "failed" else PROCESSING


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def coze_dataset(kb: KnowledgeBaseOut, tenant_id: uuid.UUID) -> CozeDataset:
    return CozeDataset(dataset_id=str(kb.id), name=kb.name, description=kb.description, space_id=str(tenant_id),
                       status=ENABLED if kb.status == "active" else DISABLED, format_type=0, can_edit=True,
                       doc_count=kb.document_count, slice_count=kb.segment_count,
                       chunk_strategy=CozeChunkStrategyOut(chunk_type=1, max_tokens=kb.chunking.chunk_size,
                                                           remove_extra_spaces=kb.chunking.normalize_whitespace,
                                                           separator=kb.chunking.separators[0]),
                       create_time=wire.timestamp(kb.created_at), update_time=wire.timestamp(kb.updated_at))


def coze_document(document: DocumentOut) -> CozeDocument:
    source = UPLOAD_FILE_ID if document.metadata.get("coze_source") == "file_id" else LOCAL_FILE
    return CozeDocument(document_id=str(document.id), char_count=document.tokens, format_type=0, hit_count=0,
                        name=document.name, size=document.size, slice_count=document.progress.segments_total,
                        source_type=source, status=coze_status(document.status), type=_extension(document.name),
                        update_interval=0, update_type=0, create_time=wire.timestamp(document.created_at),
                        update_time=wire.timestamp(document.updated_at))


def coze_progress(document: DocumentOut) -> CozeProgress:
    return CozeProgress(document_id=str(document.id), url="", size=document.size, type=_extension(document.name),
                        status=coze_status(document.status), progress=int(document.progress.percent),
                        update_type=0, document_name=document.name, remaining_time=0,
                        status_descript=document.error.message if document.error else "", update_interval=0)


def chunking_of(strategy: CozeChunkStrategy | None) -> ChunkingConfig | None:
    """Coze's custom chunking as Stratus's (recursive, at the separator, then anywhere); automatic: None."""
    from shared.knowledge.types import ChunkingConfig

    if strategy is None or not strategy.chunk_type:
        return None
    if strategy.max_tokens is None or not strategy.separator:
        raise _invalid("chunk_strategy: a custom strategy (chunk_type 1) names max_tokens and separator",
                       "coze_chunk_strategy_invalid")
    return ChunkingConfig(strategy="recursive", chunk_size=strategy.max_tokens,
                          chunk_overlap=min(20, strategy.max_tokens // 10), separators=[strategy.separator, ""],
                          normalize_whitespace=bool(strategy.remove_extra_spaces))


def _auto_update(rule: CozeUpdateRule | None, where: str) -> None:
    if rule is not None and rule.update_type != 0:
        raise _invalid(f"{where}: automatic updates (update_type 1) are for web pages, which Stratus does not "
                       "fetch as documents", "coze_auto_update_unsupported")


# -- use cases --------------------------------------------------------------------------------------
def create_dataset(principal: Principal, body: CreateCozeDataset) -> CozeDatasetCreated:
    from shared.knowledge.api import CreateKnowledgeBase
    from shared.knowledge.wiring import knowledge_base_service

    _text_only(body.format_type)
    kb = knowledge_base_service().create_knowledge_base(principal, CreateKnowledgeBase(
        name=body.name, description=body.description or ""))
    return CozeDatasetCreated(dataset_id=str(kb.id))


def list_datasets(principal: Principal, name: str | None, format_type: int | None, page_num: int,
                  page_size: int) -> CozeDatasetList:
    from shared.db.paging import page_request
    from shared.knowledge.wiring import knowledge_base_service

    if format_type not in (None, 0):
        # No table or image datasets here: an empty list, as Coze answers a filter nothing matches.
        return CozeDatasetList(total_count=0, dataset_list=[])
    page = knowledge_base_service().list_knowledge_bases(
        principal, page_request(page_num, page_size, "-created_at", frozenset({"created_at"})), name or None)
    return CozeDatasetList(total_count=page.total,
                           dataset_list=[coze_dataset(kb, principal.tenant) for kb in page.items])


def update_dataset(principal: Principal, dataset_id: str, body: UpdateCozeDataset) -> CozeEmpty:
    """Coze replaces name and description (an absent description empties it). Coze has no
    version: the current one is read and written at once (the last writer wins)."""
    from shared.knowledge.api import UpdateKnowledgeBase
    from shared.knowledge.wiring import knowledge_base_service

    service = knowledge_base_service()
    current = service.get_knowledge_base(principal, kb_id(dataset_id))
    service.update_knowledge_base(principal, current.id, UpdateKnowledgeBase(
        name=body.name, description=body.description or "", version=current.version))
    return CozeEmpty()


def delete_dataset(principal: Principal, dataset_id: str) -> CozeEmpty:
    from shared.knowledge.wiring import knowledge_base_service

    knowledge_base_service().delete_knowledge_base(principal, kb_id(dataset_id))
    return CozeEmpty()


def dataset_process(principal: Principal, dataset_id: str, body: DatasetProcess) -> CozeProgressList:
    from shared.knowledge.wiring import document_service

    kb = kb_id(dataset_id)
    service = document_service()
    return CozeProgressList(data=[coze_progress(service.get_document(principal, kb, document_id(value)))
                                  for value in body.document_ids])


def _content(principal: Principal, base: CozeDocumentBase, index: int) -> tuple[str, str, bytes, str]:
    """(name, content type, bytes, source) of one document base; a 4000 naming it when it is
    no file Stratus can index."""
    from shared.files.service import media_type

    where = f"document_bases[{index}]"
    info = base.source_info
    _auto_update(base.update_rule, f"{where}.update_rule")
    if info.web_url is not None or info.document_source == 1:
        raise _invalid(f"{where}: web pages (web_url) are not fetched as documents here; download the page and "
                       "send it as file_base64, or upload it (/v1/files/upload) and send source_file_id",
                       "coze_web_document_unsupported")
    if info.source_file_id is not None:
        from shared.files.paths import file_id
        from shared.files.wiring import files_service

        opened = files_service().open(principal, file_id(info.source_file_id))
        data = b"".join(opened.chunks)
        return base.name, opened.file.content_type, data, "file_id"
    if info.file_base64 is None:
        raise _invalid(f"{where}.source_info: give file_base64 with file_type, or source_file_id",
                       "coze_document_source_missing")
    try:
        data = base64.b64decode(info.file_base64, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{where}.source_info.file_base64 is not base64", "coze_document_base64_invalid") from None
    extension = (info.file_type or _extension(base.name) or "txt").lower()
    name = base.name if _extension(base.name) == extension else f"{base.name}.{extension}"
    return name, media_type(None, name), data, "base64"


def create_documents(principal: Principal, body: CreateCozeDocuments) -> list[CozeDocument]:
    """Every document base is read and checked before any is stored: a bad one stores none."""
    from shared.knowledge.wiring import document_service

    _text_only(body.format_type)
    from shared.knowledge.wiring import knowledge_base_service

    # The dataset first: an unknown one is Coze's not-found whatever the documents hold.
    kb = knowledge_base_service().get_knowledge_base(principal, kb_id(body.dataset_id)).id
    chunking = chunking_of(body.chunk_strategy)
    contents = [_content(principal, base, index) for index, base in enumerate(body.document_bases)]
    _check_contents(contents)
    service = document_service()
    return [coze_document(service.create_document_content(
        principal, kb, name, content_type, data, chunking,
        metadata={"coze_source": "file_id"} if source == "file_id" else None))
        for name, content_type, data, source in contents]


def _check_contents(contents: list[tuple[str, str, bytes, str]]) -> None:
    """The checks ``create_document_content`` makes, made for every document first."""
    from shared.config import get_settings
    from shared.knowledge.parsing import SUPPORTED_CONTENT_TYPES, detect_format

    limit = get_settings().max_document_bytes
    for index, (name, content_type, data, _) in enumerate(contents):
        if content_type not in SUPPORTED_CONTENT_TYPES:
            detect_format(content_type, name)
        if not data:
            raise _invalid(f"document_bases[{index}]: the file is empty", "coze_document_empty")
        if len(data) > limit:
            raise _invalid(f"document_bases[{index}]: the file is larger than the {limit} bytes allowed",
                           "coze_document_too_large")


def list_documents(principal: Principal, body: ListCozeDocuments) -> CozeDocumentList:
    from shared.db.paging import page_request
    from shared.knowledge.wiring import document_service

    page = document_service().list_documents(principal, kb_id(body.dataset_id), None,
                                             page_request(body.page, body.size, "created_at",
                                                          frozenset({"created_at"})))
    return CozeDocumentList(document_infos=[coze_document(d) for d in page.items], total=page.total)


def update_document(principal: Principal, body: UpdateCozeDocument) -> CozeEmpty:
    from shared.knowledge.api import UpdateDocument
    from shared.knowledge.wiring import document_service

    _auto_update(body.update_rule, "update_rule")
    service = document_service()
    document = service.find_document(principal, document_id(body.document_id))
    if body.document_name is not None:
        service.update_document(principal, document.knowledge_base_id, document.id,
                                UpdateDocument(name=body.document_name, version=document.version))
    return CozeEmpty()


def delete_documents(principal: Principal, body: DeleteCozeDocuments) -> CozeEmpty:
    """Every id is found before any document is deleted: an unknown one deletes none."""
    from shared.knowledge.wiring import document_service

    service = document_service()
    found = [service.find_document(principal, document_id(value)) for value in dict.fromkeys(body.document_ids)]
    for document in found:
        service.delete_document(principal, document.knowledge_base_id, document.id)
    return CozeEmpty()


def created_body(documents: list[CozeDocument], logid: str) -> CozeDocumentsCreated:
    return CozeDocumentsCreated(document_infos=documents, detail=wire.CozeDetail(logid=logid))
