"""Tenancy API models (requests are validated by the resolver, responses documented in OpenAPI)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, Strict, StringConstraints, field_validator

from shared.auth.permissions import TENANT_PERMISSIONS, Role
from shared.validation import INT4_MAX, LaxDatetime, LaxUUID, RequestModel

Name = Field(min_length=1, max_length=100)
# Deliverability is not ours to check here; the shape is.
Email = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=320,
                                         pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


_Request = RequestModel
# Far enough for any real key, near enough that every stored time converts to UTC and back.
_LATEST_EXPIRY_YEAR = 9000


# Strict request models take an enum member only from its JSON string.
RoleName = Annotated[Role, Strict(False)]


class CreateTenant(_Request):
    name: str = Name
    owner_email: Email | None = None
    owner_name: str = Field(default="", max_length=100)


class Tenant(BaseModel):
    id: uuid.UUID
    name: str
    status: str
    created_at: datetime
    updated_at: datetime


class Member(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime
    updated_at: datetime
    version: int


class TenantCreated(BaseModel):
    tenant: Tenant
    owner: Member
    owner_token: str


class CreateMember(_Request):
    email: Email
    name: str = Field(default="", max_length=100)
    role: RoleName = Role.DEVELOPER
    # Without console sign-in yet, a new member's first access token is how they get in.
    issue_token: bool = False


class MemberCreated(Member):
    token: str | None = None


class UpdateMember(_Request):
    role: RoleName
    # Optimistic locking: when given, a stale version answers 409.
    version: int | None = Field(default=None, ge=1, le=INT4_MAX)


class CreateApiKey(_Request):
    name: str = Name
    scopes: list[str] = Field(default_factory=list, max_length=len(TENANT_PERMISSIONS))
    expires_at: LaxDatetime | None = None
    resource_type: Literal["agent", "workflow"] | None = None
    resource_id: LaxUUID | None = None

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str]) -> list[str]:
        unknown = sorted(set(scopes) - TENANT_PERMISSIONS)
        if unknown:
            raise ValueError(f"unknown scopes: {', '.join(unknown)}")
        return sorted(set(scopes))

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at must include a timezone (e.g. 2030-01-01T00:00:00Z)")
        if value is not None and value.year >= _LATEST_EXPIRY_YEAR:
            raise ValueError(f"expires_at must be before the year {_LATEST_EXPIRY_YEAR}")
        return value


class ApiKey(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    user_id: uuid.UUID
    scopes: list[str]
    resource_type: str | None
    resource_id: uuid.UUID | None
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class ApiKeyCreated(ApiKey):
    token: str
