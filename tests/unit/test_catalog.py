"""The function catalog is the one manifest: every function module is in it, and every
entry points at a real handler, trigger and layer."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import functions
from functions.catalog import (
    FUNCTIONS,
    LAYERS,
    STATE_MACHINES,
    Http,
    StepFunctionsTask,
    by_name,
    domains,
)

NOT_FUNCTIONS = {"functions.catalog"}


def _function_modules() -> set[str]:
    root = Path(functions.__file__).parent
    found = set()
    for info in pkgutil.walk_packages([str(root)], prefix="functions."):
        if not info.ispkg and info.name not in NOT_FUNCTIONS:
            found.add(info.name)
    return found


def test_every_module_in_functions_is_in_the_catalog() -> None:
    missing = _function_modules() - {fn.module for fn in FUNCTIONS}
    assert not missing, f"add these to functions/catalog.py: {sorted(missing)}"


def test_every_catalog_entry_has_a_handler() -> None:
    for fn in FUNCTIONS:
        module = importlib.import_module(fn.module)
        assert callable(getattr(module, "handler", None)), fn.module


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
