"""The container's workflow definitions service (drafts, versions, import and export), wired
to its database and the model resolver (read-only: publishing checks models without loading a
provider SDK). The interpreter's wiring is :mod:`shared.workflows.wiring`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.workflows.runs_service import WorkflowRunService
    from shared.workflows.service import WorkflowService


def workflow_service() -> WorkflowService:
    from shared.agents.wiring import agent_service
    from shared.db.database import get_database
    from shared.models.wiring import model_resolver
    from shared.tools.wiring import tool_runtime
    from shared.workflows.service import WorkflowService

    return WorkflowService(get_database(), model_resolver, tools=tool_runtime, agents=agent_service)


def workflow_run_service() -> WorkflowRunService:
    from shared.cache.factory import get_event_stream
    from shared.config import get_settings
    from shared.db.database import get_database
    from shared.files.wiring import files_service
    from shared.workflows.runs_service import RunSettings, WorkflowRunService
    from shared.workflows.wiring import executions, run_events, run_store

    settings = get_settings()
    return WorkflowRunService(get_database(), workflow_service(), run_store(), executions, get_event_stream(),
                              run_events(), RunSettings(settings.workflow_sync_wait_s,
                                                        settings.workflow_stale_after_s,
                                                        settings.workflow_events_ttl_s), files=files_service)
