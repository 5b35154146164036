"""Stratus's success and error envelopes (docs/architecture.md §4.3): the models handlers
declare as their answers, and the bodies the Stratus dialect (``shared.http.dialect``) builds."""

from __future__ import annotations

import json
import math
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from shared.errors import StratusError

T = TypeVar("T")

JSON = "application/json"


class Meta(BaseModel):
    request_id: str


class Pagination(BaseModel):
    page: int
    limit: int
    total: int
    total_pages: int
    has_next: bool
    has_prev: bool

    @classmethod
    def of(cls, page: int, limit: int, total: int) -> Pagination:
        total_pages = math.ceil(total / limit) if total else 0
        return cls(page=page, limit=limit, total=total, total_pages=total_pages,
                   has_next=page < total_pages, has_prev=page > 1)


class Envelope(BaseModel, Generic[T]):
    code: str = "success"
    data: T
    meta: Meta


class ListEnvelope(BaseModel, Generic[T]):
    code: str = "success"
    data: list[T]
    pagination: Pagination
    meta: Meta


class ErrorEnvelope(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}
    request_id: str


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def success_payload(data: Any, request_id: str, pagination: Pagination | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": "success", "data": _dump(data)}
    if pagination is not None:
        body["pagination"] = pagination.model_dump()
    body["meta"] = {"request_id": request_id}
    return body


def error_body(error: StratusError, request_id: str) -> str:
    return json.dumps({"code": error.code, "message": error.message, "details": error.details,
                       "request_id": request_id}, separators=(",", ":"), default=str)
