"""Query parameters shared by list endpoints: ``?page=&limit=&sort=-created_at,name`` (the
handler turns them into the data layer's ``PageRequest`` with ``page_request``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BeforeValidator

from shared.db.paging import page_request

__all__ = ["IsoDatetime", "LimitQuery", "PageQuery", "SortQuery", "page_request"]


PageQuery = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")]
LimitQuery = Annotated[int, Query(ge=1, le=100, description="Items per page (max 100)")]
SortQuery = Annotated[str, Query(max_length=200, pattern=r"^-?[a-z_]+(,-?[a-z_]+)*$",
                                 description="Comma-separated fields, '-' for descending")]


_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _iso_only(value: Any) -> Any:
    # pydantic reads a number as seconds since 1970: "?to=0.5" would be a date in 1970.
    if isinstance(value, str) and _NUMBER.match(value):
        raise ValueError("expected an ISO 8601 date or date-time (e.g. 2026-01-31T00:00:00Z), not a number")
    return value


# A date-time query parameter: ISO 8601 only.
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]
