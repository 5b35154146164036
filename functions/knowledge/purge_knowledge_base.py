"""Step Functions task: remove one batch of a deleted knowledge base (the machine loops while
``done`` is false)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

from shared.handler import powertools_handler
from shared.knowledge.wiring import ingestion_service


class PurgeKnowledgeBase(BaseModel):
    tenant_id: uuid.UUID
    knowledge_base_id: uuid.UUID


def _purge(event: dict[str, Any], context: Any) -> dict[str, Any]:
    item = PurgeKnowledgeBase.model_validate(event)
    done = ingestion_service().purge_knowledge_base(item.tenant_id, item.knowledge_base_id,
                                                    context.get_remaining_time_in_millis)
    return {"tenant_id": str(item.tenant_id), "knowledge_base_id": str(item.knowledge_base_id), "done": done}


handler = powertools_handler(_purge)
