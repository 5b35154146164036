"""Step Functions Map item: embed one range of a large document's segments."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from shared.handler import powertools_handler
from shared.knowledge.wiring import ingestion_service


class EmbedBatch(BaseModel):
    tenant_id: uuid.UUID
    document_id: uuid.UUID
    attempt: int = Field(ge=1)
    first: int = Field(ge=0)
    last: int = Field(ge=0)


def _embed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    item = EmbedBatch.model_validate(event)
    return ingestion_service().embed_batch(item.tenant_id, item.document_id, item.attempt, item.first, item.last)


handler = powertools_handler(_embed)
