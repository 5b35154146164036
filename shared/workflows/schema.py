"""The workflow document's JSON Schema (docs/workflow-document.schema.json): the document
model with each node type's configuration attached to its ``type``, so an editor validates
``config`` too. Regenerate the committed file after changing a model:

    .venv/bin/python -m shared.workflows.schema docs/workflow-document.schema.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.workflows.configs import CONFIGS
from shared.workflows.definition import WorkflowDocument

SCHEMA_ID = "https://stratus.dev/schemas/workflow-document.schema.json"


def document_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a workflow document, node configurations included."""
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [
        (WorkflowDocument, "validation"), *((model, "validation") for model in CONFIGS.values())]
    refs, schema = models_json_schema(models, ref_template="#/$defs/{model}")
    definitions: dict[str, Any] = schema["$defs"]
    node = definitions["Node"]
    node["allOf"] = [
        {"if": {"properties": {"type": {"const": node_type}}, "required": ["type"]},
         "then": {"properties": {"config": refs[(model, "validation")]}}}
        for node_type, model in CONFIGS.items()]
    document = refs[(WorkflowDocument, "validation")]["$ref"].rsplit("/", 1)[1]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **definitions[document],
        "title": "Stratus workflow document",
        "description": "A workflow: nodes (each with its type's config), edges and their source handles. "
                       "See docs/workflows.md.",
        "$defs": {name: value for name, value in definitions.items() if name != document},
    }


def render() -> str:
    return json.dumps(document_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":
    Path(sys.argv[1] if len(sys.argv) > 1 else "docs/workflow-document.schema.json").write_text(render())
