"""Agent API shapes: drafts, published versions, copies."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from shared.agents.config import MAX_INPUT_CHARS, MAX_USER_VARIABLES, VARIABLE_NAME, AgentConfig
from shared.validation import INT4_MAX, RequestModel

_URL = re.compile(r"^https://[^\s]{1,492}$")


def check_avatar(value: str | None) -> str | None:
    """An https URL (≤ 500 characters) or a short emoji / text badge (≤ 16 characters)."""
    if value is None or value == "":
        return None
    if value.lower().startswith(("http://", "https://")):
        if not _URL.fullmatch(value):
            raise ValueError("avatar: give an https URL of at most 500 characters, or an emoji")
        return value
    if len(value) > 16 or any(ch.isspace() for ch in value):
        raise ValueError("avatar: give an https URL, or an emoji of at most 16 characters")
    return value


class CreateAgent(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    avatar: str | None = Field(default=None, max_length=500)
    # Missing fields take their defaults (GET shows the full configuration).
    config: AgentConfig = Field(default_factory=AgentConfig)

    @field_validator("avatar")
    @classmethod
    def _avatar(cls, value: str | None) -> str | None:
        return check_avatar(value)


class UpdateAgent(RequestModel):
    """Change the draft. ``config`` replaces the draft's configuration as a whole (send the
    object read from GET, changed); ``avatar: null`` removes the avatar."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    avatar: str | None = Field(default=None, max_length=500)
    config: AgentConfig | None = None
    version: int = Field(ge=1, le=INT4_MAX, description="The version read; a stale one answers 409")

    @field_validator("avatar")
    @classmethod
    def _avatar(cls, value: str | None) -> str | None:
        return check_avatar(value)


class PublishAgent(RequestModel):
    note: str = Field(default="", max_length=1000, description="What changed in this version")
    # When given, the draft must still be at this version (else 409): publish what was reviewed.
    version: int | None = Field(default=None, ge=1, le=INT4_MAX)


class CopyAgent(RequestModel):
    # Default: "<name> (copy)", numbered if taken.
    name: str | None = Field(default=None, min_length=1, max_length=100)


class AgentOut(BaseModel):
    id: uuid.UUID
    # Built-ins only (e.g. "builtin-quick-answer"); GET /api/v1/agents/{slug} works too.
    slug: str | None
    builtin: bool
    name: str
    description: str
    avatar: str | None
    # The draft configuration.
    config: AgentConfig
    # The latest published version (chats use it), None before the first publish.
    # Built-ins are never published: their configuration cannot change, chats use it as is.
    published_version: int | None
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class AgentVersionOut(BaseModel):
    id: uuid.UUID
    agent_id: uuid.UUID
    number: int
    name: str
    description: str
    avatar: str | None
    config: AgentConfig
    note: str
    published_by: uuid.UUID | None
    created_at: datetime


class AgentVariableValue(BaseModel):
    name: str
    description: str
    value: str = Field(description="The end user's value, else the declared default")
    default: str
    source: Literal["stored", "default"] = Field(description="`stored`: set for this end user; `default`: not set")
    created_at: datetime | None = Field(description="When the end user's value was first set (None: never)")
    updated_at: datetime | None = Field(description="When the end user's value was last set (None: never)")


class AgentVariablesOut(BaseModel):
    agent_id: uuid.UUID
    user: str = Field(description="The end user the values are kept for")
    variables: list[AgentVariableValue]


class SetAgentVariables(RequestModel):
    """New values by name (each a declared agent variable); ``null`` takes a value back to its default."""

    values: dict[Annotated[str, StringConstraints(pattern=VARIABLE_NAME)],
                 Annotated[str, StringConstraints(max_length=MAX_INPUT_CHARS)] | None] = Field(
        min_length=1, max_length=MAX_USER_VARIABLES)
