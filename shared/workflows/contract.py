"""What the workflows domain offers the others: whether a workflow exists in a tenant (API
keys bound to a workflow), and the document a run executes. Callers depend on
:class:`WorkflowResolver`, never on the service."""

from __future__ import annotations

import uuid
from typing import Literal, NamedTuple, Protocol

from shared.workflows.definition import WorkflowDocument

__all__ = ["CHATFLOW", "DRAFT", "RunnableWorkflow", "WorkflowResolver"]

# The version a run names to execute the draft.
DRAFT = "draft"
# The document mode of a chatflow (what a chatflow agent runs).
CHATFLOW = "chatflow"


class RunnableWorkflow(NamedTuple):
    """What a run executes: the workflow, the document, and the published version number it
    came from (None: the draft)."""

    workflow_id: uuid.UUID
    name: str
    version: int | None
    document: WorkflowDocument


class WorkflowResolver(Protocol):
    def workflow_id(self, tenant_id: uuid.UUID, workflow_id: uuid.UUID) -> uuid.UUID:
        """The id of a live workflow of the tenant; 404 ``workflow_not_found`` otherwise
        (another tenant's id included)."""
        ...

    def resolve_for_run(self, tenant_id: uuid.UUID, workflow_id: uuid.UUID,
                        version: int | Literal["draft"] | None = None) -> RunnableWorkflow:
        """``None``: the latest published version (409 ``workflow_not_published`` if none);
        a number: that version (404 ``workflow_version_not_found``); ``"draft"``: the draft,
        validated as publishing would (422 ``workflow_invalid`` listing every problem).
        Unseen workflows are 404."""
        ...
