"""Uploaded files as run inputs (docs/files.md): a start input of type ``object`` (one file) or
``array[object]`` (files) may name an uploaded file by id — ``{"file_id": …}``, Dify's
``{"upload_file_id": …}``, or the JSON text of either (Coze) — and the run receives the file
reference the engine reads (``{"s3_key", "filename", "mime_type", …}``, what document
extractors take). Resolved before the inputs are validated; a file the tenant does not have is
a 422 naming the input."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from shared.errors import NotFound
from shared.files.contract import FileReferences, named_file_id
from shared.workflows.definition import WorkflowDocument
from shared.workflows.errors import WorkflowInputInvalid


def resolve_file_inputs(document: WorkflowDocument, inputs: Any, tenant_id: uuid.UUID,
                        files: Callable[[], FileReferences] | None) -> Any:
    """``inputs`` with every file id in an object input replaced by its file reference (other
    values, and inputs that are no mapping, as they are: validation reports them)."""
    from shared.workflows.validation import input_schema

    if not isinstance(inputs, Mapping):
        return inputs
    kinds = {v.variable: v.type for v in input_schema(document) if v.type in ("object", "array[object]")}
    if not kinds:
        return inputs
    resolved = dict(inputs)
    errors: list[dict[str, str]] = []

    def reference(value: Any, field: str) -> Any:
        file_id = named_file_id(value)
        if file_id is None:
            return value
        try:
            parsed = uuid.UUID(file_id)
            if files is None:
                raise NotFound()
            return files().reference(tenant_id, parsed)
        except (ValueError, NotFound):
            errors.append({"field": field, "type": "file_not_found",
                           "message": f"there is no uploaded file {file_id!r} (upload it with POST /api/v1/files)"})
            return value

    for name, kind in kinds.items():
        value = inputs.get(name)
        if kind == "object":
            resolved[name] = reference(value, f"inputs.{name}")
        elif isinstance(value, list):
            resolved[name] = [reference(item, f"inputs.{name}[{index}]") for index, item in enumerate(value)]
    if errors:
        raise WorkflowInputInvalid(errors)
    return resolved
