"""Models the catalog names as "module:Name" strings (the catalog stays import-light), imported
when the HTTP layer first needs them."""

from __future__ import annotations

import importlib
from functools import cache

from pydantic import BaseModel


@cache
def model_of(ref: str) -> type[BaseModel]:
    module, sep, name = ref.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"{ref!r} is not a model reference (module:Name)")
    found = getattr(importlib.import_module(module), name, None)
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise TypeError(f"{ref} is not a pydantic model")
    return found
