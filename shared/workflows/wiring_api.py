"""The container's workflow definitions service (drafts, versions, import and export), wired
to its database and the model resolver (read-only: publishing checks models without loading a
provider SDK). The interpreter's wiring is :mod:`shared.workflows.wiring`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.workflows.service import WorkflowService


def workflow_service() -> WorkflowService:
    from shared.db.database import get_database
    from shared.models.wiring import model_resolver
    from shared.workflows.service import WorkflowService

    return WorkflowService(get_database(), model_resolver)
