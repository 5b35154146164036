"""The HTTP layer's place in the import graph: ``shared/`` (the HTTP layer included) never
imports ``functions/`` (it is handed catalog entries), and no domain nor the data layer imports
the HTTP layer (handlers build envelopes; services stay free of HTTP types)."""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
# Not domains: the HTTP layer itself, and the modules every layer shares.
_NOT_DOMAINS = {"http", "auth", "aws", "cache"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _modules() -> list[tuple[Path, set[str]]]:
    return [(path, _imports(path)) for path in sorted(SHARED.rglob("*.py"))]


def test_shared_never_imports_functions() -> None:
    modules = _modules()
    # The scan sees what it must (the HTTP app reads the catalog's schema, not its entries).
    assert "shared.catalog" in dict((str(p.relative_to(SHARED)), n) for p, n in modules)["http/api.py"]
    offenders = [str(path.relative_to(SHARED.parent)) for path, names in modules
                 if any(name == "functions" or name.startswith("functions.") for name in names)]
    assert not offenders


def test_domains_and_the_data_layer_do_not_import_the_http_layer() -> None:
    offenders = []
    for path, names in _modules():
        parts = path.relative_to(SHARED).parts
        if len(parts) < 2 or parts[0] in _NOT_DOMAINS:
            continue
        if any(name == "shared.http" or name.startswith("shared.http.") for name in names):
            offenders.append(str(path.relative_to(SHARED.parent)))
    assert not offenders
