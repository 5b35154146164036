"""Workflow errors (mapped to the envelope by ``shared.http.api``). Problems in a document, an
import or a run's inputs are 422s that list every problem with where it is, so one answer is
enough to fix them all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.errors import Conflict, Forbidden, NotFound, StratusError, ValidationFailed


def _summary(what: str, problems: Sequence[Mapping[str, Any]], next_step: str) -> str:
    first = problems[0]
    where = ".".join(part for part in (first.get("node_id"), first.get("field")) if part)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{what}: {where + ': ' if where else ''}{first.get('message', '')}{more}. {next_step}"


class WorkflowInvalid(ValidationFailed):
    """A workflow document that cannot run: ``details.problems`` lists every problem as
    ``{node_id, field, code, message}`` (``node_id`` is None for document-wide problems)."""

    code, default_message = "workflow_invalid", "The workflow document is not valid"

    def __init__(self, problems: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(_summary("The workflow is not valid", problems,
                                  "Fix every problem listed in details.problems and save again"),
                         details={"problems": [dict(problem) for problem in problems]})


class WorkflowInputInvalid(ValidationFailed):
    """A run's inputs do not match the start node's variables: ``details.fields`` names each
    (``inputs.<name>``), as every other 422 on a request field does."""

    code, default_message = "workflow_input_invalid", "The run's inputs are not valid"

    def __init__(self, fields: Sequence[Mapping[str, Any]]) -> None:
        first = fields[0]
        more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
        super().__init__(f"{first['field']}: {first['message']}{more}. The start node's variables say what each "
                         "input takes (GET the workflow)", details={"fields": [dict(field) for field in fields]})


class DslImportFailed(ValidationFailed):
    """A Dify DSL file that cannot be imported as it is (not YAML, not an app, malformed
    nodes). Nothing is created. ``details.problems`` locates each problem when it can."""

    code, default_message = "workflow_import_invalid", "The file is not a Dify workflow app export"

    def __init__(self, message: str | None = None, *, problems: Sequence[Mapping[str, Any]] = (),
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, details={**(details or {}), "problems": [dict(problem) for problem in problems]})


class DslImportUnsupported(DslImportFailed):
    """A well-formed Dify app that uses what Stratus does not run yet (chatflows, node types
    such as iteration or tool, file inputs...). ``details.problems`` names every such node."""

    code, default_message = "workflow_import_unsupported", "The app uses features Stratus does not run yet"


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


class WorkflowRunNotFound(NotFound):
    code, default_message = "workflow_run_not_found", "Workflow run not found"


class WorkflowRunFinished(Conflict):
    code, default_message = ("workflow_run_finished",
                             "The run has already finished; only a pending, running or paused run can be cancelled")


class WorkflowNotAllowed(Forbidden):
    code, default_message = ("auth_workflow_not_allowed",
                             "This token is bound to another app (a workflow or an agent): use a key of this "
                             "workflow, or a member token")


class WorkflowDraftNotAllowed(Forbidden):
    code, default_message = ("auth_draft_not_allowed",
                             "A key bound to a workflow runs its published versions only: omit version, or give a "
                             "version number")


class WorkflowRunEventsExpired(StratusError):
    code, status, default_message = ("workflow_run_events_expired", 410,
                                     "The run's events are no longer kept (WORKFLOW_EVENTS_TTL_S after they were "
                                     "sent); read the run instead: GET /api/v1/workflow-runs/{id}")


class WorkflowRunEventIdInvalid(ValidationFailed):
    code, default_message = ("workflow_run_event_id_invalid",
                             "Last-Event-ID is not an event id of this run's stream: send the `id` of the last event "
                             "you received (<milliseconds>-<sequence>), or none to replay from the start")

    def __init__(self, field: str = "headers.last-event-id") -> None:
        # ``field``: where the id came from (the header, or ``query.last_event_id``).
        super().__init__(details={"fields": [{"field": field, "type": "value_error",
                                              "message": "expected <milliseconds>-<sequence>"}]})


class WorkflowAnswerInvalid(ValidationFailed):
    """A person's answer to a paused run does not fit the form: ``details.fields`` names each
    field (``answer.<name>``, ``action``)."""

    code, default_message = "workflow_answer_invalid", "The answer does not fit the form"

    def __init__(self, fields: Sequence[Mapping[str, Any]]) -> None:
        first = fields[0]
        more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
        super().__init__(f"{first['field']}: {first['message']}{more}. The run's pause shows the form's fields "
                         "(GET the run)", details={"fields": [dict(field) for field in fields]})


class WorkflowRunNotPaused(Conflict):
    """A resume of a run that is not waiting for input (never paused, already resumed, timed
    out, finished), or that waits at another node."""

    code, default_message = ("workflow_run_not_paused",
                             "The run is not waiting for input; GET the run for its status")


class ChatflowUnavailable(Conflict):
    """An agent's chatflow whose latest published version is no chatflow (it was republished as
    a workflow)."""

    code = "agent_chatflow_unavailable"
    default_message = ("The agent's workflow is not a chatflow any more: publish it as a chatflow (mode "
                       "\"chatflow\") or bind the agent to another")


class WorkflowCallCycle(Conflict):
    """A workflow tool asked to start a run of a workflow already on its call path (or too deep):
    ``details.lineage`` spells the path."""

    code, default_message = ("workflow_call_cycle",
                             "A workflow tool cannot start the workflow that called it: remove the tool from it")
