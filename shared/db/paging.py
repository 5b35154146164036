"""Paging as the data layer sees it: which page, how many, in what order; and what a page holds.
Neutral on purpose: repositories and services take a ``PageRequest`` and return a ``Page``;
only the HTTP layer turns a page into the envelope's ``pagination``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from shared.errors import ValidationFailed

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    page: int
    limit: int
    # (column, descending) pairs, already checked against the resource's sortable fields.
    order: tuple[tuple[str, bool], ...]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    limit: int
    # Matching items over all pages.
    total: int

    @classmethod
    def of(cls, items: list[T], request: PageRequest, total: int) -> Page[T]:
        return cls(items, request.page, request.limit, total)


def page_request(page: int, limit: int, sort: str, allowed: frozenset[str]) -> PageRequest:
    """A page of a resource sortable by ``allowed`` (``sort``: ``-created_at,name``)."""
    order: list[tuple[str, bool]] = []
    for part in sort.split(","):
        name = part.lstrip("-")
        if name not in allowed:
            raise ValidationFailed(details={"fields": [{
                "field": "query.sort", "type": "sort_field",
                "message": f"Cannot sort by {name!r}; sortable fields: {', '.join(sorted(allowed))}"}]})
        order.append((name, part.startswith("-")))
    return PageRequest(page, limit, tuple(order))
