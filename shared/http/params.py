"""Query parameters shared by list endpoints: ``?page=&limit=&sort=-created_at,name``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from shared.errors import ValidationFailed

PageQuery = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")]
LimitQuery = Annotated[int, Query(ge=1, le=100, description="Items per page (max 100)")]
SortQuery = Annotated[str, Query(max_length=200, pattern=r"^-?[a-z_]+(,-?[a-z_]+)*$",
                                 description="Comma-separated fields, '-' for descending")]


@dataclass(frozen=True)
class PageRequest:
    page: int
    limit: int
    # (column, descending) pairs, already checked against the resource's sortable fields.
    order: tuple[tuple[str, bool], ...]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def page_request(page: int, limit: int, sort: str, allowed: frozenset[str]) -> PageRequest:
    order: list[tuple[str, bool]] = []
    for part in sort.split(","):
        name = part.lstrip("-")
        if name not in allowed:
            raise ValidationFailed(details={"fields": [{
                "field": "query.sort", "type": "sort_field",
                "message": f"Cannot sort by {name!r}; sortable fields: {', '.join(sorted(allowed))}"}]})
        order.append((name, part.startswith("-")))
    return PageRequest(page, limit, tuple(order))
