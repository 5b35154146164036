"""Step Functions task after the Map: the document is indexed, or failed with the batches' error."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from shared.handler import powertools_handler
from shared.knowledge.wiring import ingestion_service


class FinishDocument(BaseModel):
    tenant_id: uuid.UUID
    document_id: uuid.UUID
    attempt: int = Field(ge=1)


def _finish(event: dict[str, Any], context: Any) -> dict[str, Any]:
    item = FinishDocument.model_validate(event)
    return ingestion_service().finish(item.tenant_id, item.document_id, item.attempt)


handler = powertools_handler(_finish)
