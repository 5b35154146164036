"""One module per use case, each exposing ``handler(event, context)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.catalog import register_lookup

if TYPE_CHECKING:
    from shared.catalog import Function


def _entry(name: str) -> Function:
    # Imported on first use (the cold-start settings check), not with every handler module.
    from functions.catalog import by_name

    try:
        return by_name()[name]
    except KeyError:
        raise LookupError(f"STRATUS_FUNCTION={name!r} is not in functions/catalog/") from None


# shared/ may not import functions/: the entry points tell it where their catalog is.
register_lookup(_entry)
