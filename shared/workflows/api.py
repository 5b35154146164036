"""Workflow API shapes: drafts, published versions, Dify import and export.

A draft is saved as the editor sends it, checked for shape and size only (work in progress
can be saved, as in Dify); every answer naming one workflow carries the draft's ``problems``
so an editor can show them. Publishing validates the whole document and snapshots it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from shared.validation import INT4_MAX, RequestModel
from shared.workflows.definition import MAX_DEFINITION_BYTES, WorkflowDocument

# The largest Dify DSL file imported (characters); the request body limit applies too.
MAX_IMPORT_CHARS = 1_000_000

_DOCUMENT = ("The workflow's graph: nodes (each with its type's `config`), edges between them; see docs/workflows.md. "
             f"At most {MAX_DEFINITION_BYTES} bytes as JSON.")


def document_size(document: WorkflowDocument) -> int:
    """Bytes of the document as stored (compact JSON). Python mode, so a NaN or an infinity in
    a configuration (Python's decoder reads them) raises ValueError instead of turning null."""
    return len(json.dumps(document.model_dump(), separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode())


def check_document_size(document: WorkflowDocument | None) -> WorkflowDocument | None:
    if document is None:
        return None
    try:
        size = document_size(document)
    except ValueError:
        # json.loads reads NaN and Infinity; JSON (and PostgreSQL's jsonb) has no such numbers.
        raise ValueError("the document holds a number JSON cannot represent (NaN or Infinity)") from None
    if size > MAX_DEFINITION_BYTES:
        raise ValueError(f"the document is {size} bytes as JSON; at most {MAX_DEFINITION_BYTES} are allowed "
                         "(split the workflow, or move large text out of node configurations)")
    return document


class CreateWorkflow(RequestModel):
    name: str = Field(min_length=1, max_length=100, description="Unique in the tenant, ignoring case")
    description: str = Field(default="", max_length=2000)
    document: WorkflowDocument | None = Field(
        default=None, description=_DOCUMENT + " Omitted: a start node linked to an end node.")

    _size = field_validator("document")(check_document_size)


class UpdateWorkflow(RequestModel):
    """Change the draft. ``document`` replaces the draft as a whole (send the document read
    from GET, changed); fields left out keep their value."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    document: WorkflowDocument | None = Field(default=None, description=_DOCUMENT)
    version: int = Field(ge=1, le=INT4_MAX, description="The version read; a stale one answers 409")

    _size = field_validator("document")(check_document_size)


class PublishWorkflow(RequestModel):
    note: str = Field(default="", max_length=1000, description="What changed in this version")
    version: int | None = Field(default=None, ge=1, le=INT4_MAX,
                                description="When given, the draft must still be at this version (else 409): "
                                            "publish what was reviewed")


class ImportWorkflow(RequestModel):
    format: Literal["dify"] = Field(description="The file's format: a Dify app DSL (YAML, `mode: workflow`)")
    content: str = Field(min_length=1, max_length=MAX_IMPORT_CHARS, description="The file's text")
    name: str | None = Field(default=None, min_length=1, max_length=100,
                             description="The new workflow's name; omitted: the name in the file (numbered if "
                                         "taken)")


class WorkflowProblem(BaseModel):
    """Something that keeps the document from being published or run."""

    node_id: str | None = Field(description="The node it concerns; null: the whole document")
    field: str = Field(description="Where in the node (or document), e.g. `config.model.name`")
    code: str = Field(description="A machine code, e.g. `reference_unknown`, `model_not_found`")
    message: str


class WorkflowSummary(BaseModel):
    """A workflow in a list: everything but the document."""

    id: uuid.UUID
    name: str
    description: str
    # The latest published version (runs use it by default); null before the first publish.
    published_version: int | None
    published_at: datetime | None
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="The draft's version: send it back with a change")


class WorkflowOut(WorkflowSummary):
    document: WorkflowDocument = Field(description="The draft. " + _DOCUMENT)
    problems: list[WorkflowProblem] = Field(
        description="What publishing would refuse in the draft's graph (empty: it passes the document checks; "
                    "publishing also checks that models and knowledge bases exist)")


class WorkflowVersionSummary(BaseModel):
    id: uuid.UUID
    workflow_id: uuid.UUID
    number: int = Field(description="1, 2, 3… per workflow")
    name: str = Field(description="The workflow's name when it was published")
    description: str
    note: str
    created_by: uuid.UUID | None = Field(description="Who published it")
    created_at: datetime


class WorkflowVersionOut(WorkflowVersionSummary):
    document: WorkflowDocument = Field(description="The document as published (immutable)")


class ModelSubstitution(BaseModel):
    """An LLM node of the imported file whose model names none of the tenant's chat models,
    and the model it uses instead."""

    node_id: str
    requested: str = Field(description="The file's model, `provider/name`")
    used: str | None = Field(description="The tenant's model used instead (its default chat model); null: the "
                                         "tenant's default chat model at run time, whichever it is then")


class WorkflowImported(BaseModel):
    workflow: WorkflowOut = Field(description="The new workflow (its draft)")
    substitutions: list[ModelSubstitution] = Field(description="Every model reference that was replaced")
    warnings: list[str] = Field(description="What was not carried over as it was (settings Stratus does not "
                                            "use, values out of range…)")


ExportFormat = Literal["dify"]

# What an export answers, as YAML parses it (the OpenAPI document's description of the file).
DIFY_DSL_SCHEMA = {
    "type": "object",
    "description": "A Dify app DSL (version 0.3.1, `mode: workflow`) that Dify's importer and "
                   "`POST /api/v1/workflows/import` take",
    "required": ["app", "kind", "version", "workflow"],
    "properties": {
        "app": {"type": "object", "description": "name, description, mode"},
        "kind": {"const": "app"},
        "version": {"type": "string"},
        "workflow": {"type": "object", "description": "graph (nodes, edges), features"},
    },
}
