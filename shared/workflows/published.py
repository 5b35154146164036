"""What the tools domain lists as tools: the tenant's published workflows, each with the
document of its latest version (its start node's inputs are the tool's arguments)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.workflows.definition import WorkflowDocument

if TYPE_CHECKING:
    from shared.db.database import Database

# A tenant's workflows offered as tools at most (newest published first).
MAX_PUBLISHED = 100


@dataclass(frozen=True)
class PublishedWorkflow:
    workflow_id: uuid.UUID
    name: str
    description: str
    version: int
    document: WorkflowDocument


def published_workflows(db: Database, tenant_id: uuid.UUID,
                        workflow_ids: list[uuid.UUID] | None = None) -> list[PublishedWorkflow]:
    """Live workflows of the tenant with a published version (those of ``workflow_ids`` when
    given), newest publication first."""
    with db.transaction(tenant_id) as conn:
        found = conn.execute(
            """SELECT w.id, w.name, w.description, v.number, v.document
                 FROM workflows w JOIN workflow_versions v
                   ON v.workflow_id = w.id AND v.tenant_id = w.tenant_id AND v.number = w.published_version
                WHERE w.tenant_id = %(tenant)s AND w.deleted_at IS NULL AND w.published_version IS NOT NULL
                  AND (%(ids)s::uuid[] IS NULL OR w.id = ANY(%(ids)s))
                ORDER BY w.published_at DESC, w.id LIMIT %(limit)s""",
            {"tenant": tenant_id, "ids": workflow_ids, "limit": MAX_PUBLISHED}).fetchall()
    return [PublishedWorkflow(row[0], row[1], row[2], row[3], WorkflowDocument.model_validate(row[4]))
            for row in found]
