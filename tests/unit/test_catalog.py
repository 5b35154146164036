"""The function catalog is the one manifest: every function module is in it, and every
entry points at a real handler, trigger and layer."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import functions
from functions.catalog import (
    FUNCTIONS,
    LAYERS,
    STATE_MACHINES,
    FunctionUrl,
    Http,
    Invoked,
    StepFunctionsTask,
    by_name,
    domains,
    streaming_functions,
)
from shared.catalog import under_prefix

# The catalog package itself (entries, not use cases).
CATALOG_PACKAGE = "functions.catalog"


def _function_modules() -> set[str]:
    root = Path(functions.__file__).parent
    found = set()
    for info in pkgutil.walk_packages([str(root)], prefix="functions."):
        if not info.ispkg and not info.name.startswith(CATALOG_PACKAGE + "."):
            found.add(info.name)
    return found


def test_every_module_in_functions_is_in_the_catalog() -> None:
    missing = _function_modules() - {fn.module for fn in FUNCTIONS}
    assert not missing, f"add these to functions/catalog/: {sorted(missing)}"


def _is_asgi_app(app: Any) -> bool:
    """An ASGI application: an async function, or an object (Starlette) with an async __call__."""
    return inspect.iscoroutinefunction(app) or (
        callable(app) and inspect.iscoroutinefunction(type(app).__call__))


def test_every_catalog_entry_has_a_handler() -> None:
    for fn in FUNCTIONS:
        module = importlib.import_module(fn.module)
        if isinstance(fn.trigger, FunctionUrl):
            # Served by uvicorn under the Lambda Web Adapter (the start script), not by a handler.
            assert _is_asgi_app(getattr(module, fn.trigger.app, None)), f"{fn.module}.{fn.trigger.app}"
        else:
            assert callable(getattr(module, "handler", None)), fn.module


def _under(path: str, prefix: str) -> bool:
    return under_prefix(path, prefix)


def test_streaming_routes_lie_under_their_prefixes_and_apart_from_http_routes() -> None:
    assert streaming_functions(), "the chat function streams"
    http_paths = [fn.trigger.path for fn in FUNCTIONS if isinstance(fn.trigger, Http)]
    http_keys = {fn.trigger.route_key for fn in FUNCTIONS if isinstance(fn.trigger, Http)}
    prefixes: list[str] = []
    stream_keys: list[str] = []
    for fn in streaming_functions():
        assert isinstance(fn.trigger, FunctionUrl)
        assert fn.trigger.path_prefixes and fn.trigger.routes, fn.name
        prefixes.extend(fn.trigger.path_prefixes)
        for route in fn.trigger.routes:
            assert any(_under(route.path, prefix) for prefix in fn.trigger.path_prefixes), (fn.name, route.path)
            assert route.permission, (fn.name, route.path)
            stream_keys.append(f"{route.method} {route.path}")
    assert len(prefixes) == len(set(prefixes))
    assert len(stream_keys) == len(set(stream_keys))
    assert not set(stream_keys) & http_keys
    # The edge sends everything under a streaming prefix to the function URL, whatever the
    # method: no HTTP API route may live there (a parameter stands for any one segment).
    assert not [path for path in http_paths for prefix in prefixes if _under(path, prefix)]
    owners = [fn.trigger for fn in streaming_functions() if isinstance(fn.trigger, FunctionUrl)]
    assert not [path for path in http_paths for trigger in owners if trigger.owns(re.sub(r"{\w+}", "x", path))]


def test_prefixes_with_parameters_match_whole_segments() -> None:
    trigger = by_name()["workflow-stream"].trigger
    assert isinstance(trigger, FunctionUrl)
    for path in ("/api/v1/workflows/0b0d/runs", "/api/v1/workflow-runs/1/events", "/api/v1/workflows/x/runs/_ready"):
        assert trigger.owns(path), path
    for path in ("/api/v1/workflows/0b0d", "/api/v1/workflows/0b0d/runsx", "/api/v1/workflows/a/b/runs",
                 "/api/v1/workflow-runs/1", "/api/v1/workflow-runs/1/cancel", "/api/v1/workflows/runs"):
        assert not trigger.owns(path), path
    assert trigger.readiness_path == "/api/v1/workflows/_/runs/_ready"
    assert under_prefix("/api/v1/workflow-runs/{run_id}/events", "/api/v1/workflow-runs/{id}/events")
    assert not under_prefix("/api/v1/workflow-runs/{run_id}", "/api/v1/workflow-runs/{run_id}/events")


def test_names_and_routes_are_unique() -> None:
    assert len(by_name()) == len(FUNCTIONS)
    routes = [fn.trigger.route_key for fn in FUNCTIONS if isinstance(fn.trigger, Http)]
    assert len(routes) == len(set(routes))


def test_layers_and_state_machines_exist() -> None:
    for fn in FUNCTIONS:
        assert set(fn.layers) <= set(LAYERS), fn.name
        if isinstance(fn.trigger, StepFunctionsTask):
            assert fn.trigger.state_machine in {sm.name for sm in STATE_MACHINES}
    assert domains() == sorted(domains())


def test_authenticated_routes_name_a_permission() -> None:
    for fn in FUNCTIONS:
        if isinstance(fn.trigger, Http) and fn.trigger.auth:
            assert fn.trigger.permission, fn.name


def test_invoked_functions_and_their_callers_match() -> None:
    invoked = {fn.name for fn in FUNCTIONS if isinstance(fn.trigger, Invoked)}
    assert "workflow-code" in invoked
    targets = {access.name for fn in FUNCTIONS for access in fn.access if access.kind == "function"}
    # Every invoke access names an Invoked function, and every Invoked function has a caller.
    assert targets == invoked
    for fn in FUNCTIONS:
        for access in fn.access:
            if access.kind == "function":
                assert access.actions == ("invoke",), fn.name
