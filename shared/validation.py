"""The base of every input model (request bodies and the domain inputs they carry): strict about
unknown fields and about text PostgreSQL cannot store. Neutral: domains and the HTTP layer both use it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RequestModel(BaseModel):
    # Unknown fields are a client mistake worth reporting, not silently dropping.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail in the database.
        if _has_nul(data):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return data
