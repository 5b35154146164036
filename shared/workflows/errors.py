"""Workflow errors (mapped to the envelope by ``shared.http.api``)."""

from __future__ import annotations

from shared.errors import Conflict, NotFound


class WorkflowNotFound(NotFound):
    code, default_message = "workflow_not_found", "Workflow not found"


class WorkflowVersionNotFound(NotFound):
    code, default_message = "workflow_version_not_found", "Workflow version not found"


class WorkflowNameTaken(Conflict):
    code, default_message = "workflow_name_taken", "A workflow with this name exists: choose another name"


class WorkflowVersionConflict(Conflict):
    code, default_message = ("workflow_version_conflict",
                             "The workflow changed since it was read; read it again and reapply your change")


class WorkflowNotPublished(Conflict):
    code, default_message = ("workflow_not_published",
                             "The workflow has no published version: publish it (POST /api/v1/workflows/{id}/publish), "
                             "or run its draft")
