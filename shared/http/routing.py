"""Matching request paths against the catalog's HTTP routes (the local runtime's router and
the ``$default`` route's 404/405 answers share it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from functions.catalog import Function, Http, http_functions
from shared.errors import MethodNotAllowed, NotFound, StratusError


@dataclass(frozen=True)
class CompiledRoute:
    function: Function
    route: Http
    pattern: re.Pattern[str]
    # Literal routes win over templated ones (/tenants/current before /tenants/{id}).
    literal: bool


def _compile(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{regex}$")


@cache
def compiled_routes() -> tuple[CompiledRoute, ...]:
    routes = [CompiledRoute(fn, fn.trigger, _compile(fn.trigger.path), "{" not in fn.trigger.path)
              for fn in http_functions() if isinstance(fn.trigger, Http)]
    return tuple(sorted(routes, key=lambda r: not r.literal))


def match(method: str, path: str) -> tuple[CompiledRoute, dict[str, str]] | None:
    for compiled in compiled_routes():
        if compiled.route.method == method:
            found = compiled.pattern.match(path)
            if found:
                return compiled, found.groupdict()
    return None


def allowed_methods(path: str) -> list[str]:
    return sorted({c.route.method for c in compiled_routes() if c.pattern.match(path)})


def unmatched_route_error(method: str, path: str) -> StratusError:
    allowed = allowed_methods(path)
    if allowed:
        return MethodNotAllowed(f"{method} is not allowed on {path}", code="biz_method_not_allowed",
                                details={"allowed": allowed}, headers={"Allow": ", ".join(allowed)})
    return NotFound(f"No route for {path}", code="biz_route_not_found")
