"""Matching request paths against catalog routes: the HTTP API's (the local runtime's router
and the ``$default`` route's 404/405 answers) and a streaming function's (its app's router).
The routes are handed in; this module does not read the catalog's entries."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from shared.catalog import DEFAULT_DIALECT, Facade, Function, FunctionUrl, Http, StreamRoute, prefix_pattern
from shared.errors import MethodNotAllowed, NotFound, StratusError

R = TypeVar("R", Http, StreamRoute)


@dataclass(frozen=True)
class CompiledRoute(Generic[R]):
    function: Function
    route: R
    pattern: re.Pattern[str]
    # Literal routes win over templated ones (/tenants/current before /tenants/{id}).
    literal: bool


def compile_path(path: str) -> re.Pattern[str]:
    """``/api/v1/members/{member_id}`` → a pattern whose groups are the path parameters."""
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{regex}$")


class RouteTable(Generic[R]):
    def __init__(self, routes: Iterable[tuple[Function, R]]) -> None:
        compiled = [CompiledRoute(fn, route, compile_path(route.path), "{" not in route.path) for fn, route in routes]
        self.routes: tuple[CompiledRoute[R], ...] = tuple(sorted(compiled, key=lambda r: not r.literal))

    def match(self, method: str, path: str) -> tuple[CompiledRoute[R], dict[str, str]] | None:
        for compiled in self.routes:
            if compiled.route.method == method:
                found = compiled.pattern.match(path)
                if found:
                    return compiled, found.groupdict()
        return None

    def allowed_methods(self, path: str) -> list[str]:
        return sorted({c.route.method for c in self.routes if c.pattern.match(path)})

    def unmatched(self, method: str, path: str, default_dialect: str = DEFAULT_DIALECT) -> tuple[StratusError, str]:
        """The 405 (with ``Allow``) for a known path, else the 404; and the dialect answering it:
        the path's routes' own, else ``default_dialect`` (:func:`facade_dialect` for the HTTP API:
        a path under a facade's prefix answers in its dialect)."""
        same_path = [c.route for c in self.routes if c.pattern.match(path)]
        if same_path:
            allowed = sorted({route.method for route in same_path})
            error: StratusError = MethodNotAllowed(
                f"{method} is not allowed on {path}", code="biz_method_not_allowed",
                details={"allowed": allowed}, headers={"Allow": ", ".join(allowed)})
            return error, same_path[0].dialect
        return NotFound(f"No route for {path}", code="biz_route_not_found"), default_dialect


def facade_dialect(path: str, facades: Iterable[Facade]) -> str:
    """The dialect a request for ``path`` is answered in when no route takes it: the facade's
    whose prefix it lies under (``/openai/v1/embeddings`` answers like OpenAI), else Stratus's."""
    return next((f.dialect for f in facades if prefix_pattern(f.prefix).match(path)), DEFAULT_DIALECT)


def http_routes(functions: Iterable[Function]) -> RouteTable[Http]:
    """The HTTP API's routes, of the functions handed in (the catalog's, by its callers)."""
    return RouteTable((fn, fn.trigger) for fn in functions if isinstance(fn.trigger, Http))


def stream_routes(function: Function) -> RouteTable[StreamRoute]:
    """The routes a streaming function's app serves."""
    if not isinstance(function.trigger, FunctionUrl):
        raise TypeError(f"{function.name} is not a streaming (function URL) function")
    return RouteTable((function, route) for route in function.trigger.routes)
