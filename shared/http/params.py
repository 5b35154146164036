"""Query parameters shared by list endpoints: ``?page=&limit=&sort=-created_at,name`` (the
handler turns them into the data layer's ``PageRequest`` with ``page_request``)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from shared.db.paging import page_request

__all__ = ["LimitQuery", "PageQuery", "SortQuery", "page_request"]


PageQuery = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")]
LimitQuery = Annotated[int, Query(ge=1, le=100, description="Items per page (max 100)")]
SortQuery = Annotated[str, Query(max_length=200, pattern=r"^-?[a-z_]+(,-?[a-z_]+)*$",
                                 description="Comma-separated fields, '-' for descending")]
