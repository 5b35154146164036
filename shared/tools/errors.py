"""Tool errors (mapped to the envelope by ``shared.http.api``)."""

from __future__ import annotations

from typing import Any

from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed


class ToolProviderNotFound(NotFound):
    code, default_message = "tool_provider_not_found", "Tool provider not found"


class ToolNotFound(NotFound):
    code, default_message = "tool_not_found", "The provider has no tool of that name"


class ToolProviderNameTaken(Conflict):
    code, default_message = "tool_provider_name_taken", "A tool provider with this name exists"


class ToolProviderVersionConflict(Conflict):
    code, default_message = ("tool_provider_version_conflict",
                             "The tool provider changed since it was read; read it again")


class ToolBuiltinReadonly(Forbidden):
    code, default_message = "tool_builtin_readonly", "The built-in tools cannot be changed or deleted"


class ToolProviderInvalid(ValidationFailed):
    """A provider's body is wrong in a way its shape does not show (the document, the URLs,
    the auth for its kind): each problem names its field."""

    code = "tool_provider_invalid"

    def __init__(self, problems: list[dict[str, str]]) -> None:
        first = problems[0]
        super().__init__(f"{first['field']}: {first['message']}", details={"fields": problems})


def problem(field: str, message: str, kind: str) -> dict[str, Any]:
    return {"field": field, "message": message, "type": kind}
