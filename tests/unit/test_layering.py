"""The import graph's layering rules (docs/architecture.md §9.1), checked on the source with
``ast``: every import statement counts, wherever it is (inside functions, ``TYPE_CHECKING``
blocks, ``try``), and so does ``importlib.import_module("...")`` with a literal name.

- No module under shared/ imports functions/ (functions/ imports shared/, never the reverse).
- No domain module (shared/<domain>/) and nothing in shared/db imports shared/http: services
  and repositories take and return domain types; handlers build envelopes and pagination.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
# shared/<name>/ packages that hold a domain (its models, services, repositories, ports).
DOMAINS = ("agents", "chat", "conversations", "files", "knowledge", "models", "tenancy", "maintenance", "platform",
           "workflows", "tools")


class Import(NamedTuple):
    module: str                # the importing module, e.g. shared.chat.service
    line: int
    statement: str             # as written (for the failure message)
    targets: tuple[str, ...]   # every module the statement may load


class Rule(NamedTuple):
    name: str
    applies_to: Callable[[str], bool]
    forbidden: str             # a package: it and everything under it
    why: str


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def is_domain_or_db(module: str) -> bool:
    return any(within(module, f"shared.{name}") for name in (*DOMAINS, "db"))


RULES = (
    Rule("shared-imports-functions", lambda m: within(m, "shared"), "functions",
         "shared/ is imported by functions/, never the reverse"),
    Rule("domain-imports-http", is_domain_or_db, "shared.http",
         "domains and shared/db take and return domain types; handlers build envelopes"),
)


def _dynamic_import(node: ast.Call) -> str | None:
    """The literal module name of ``importlib.import_module("x")``, ``import_module("x")`` or
    ``__import__("x")`` (relative or computed names are not followed)."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str) and not first.value.startswith("."):
        return first.value
    return None


def imports_of(source: str, module: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every import in ``source`` (the text of ``module``). ``from a import b`` may load a.b
    (b can be a submodule), so both are targets; relative imports are resolved."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                parent = ".".join([*base, *([node.module] if node.module else [])])
            else:
                parent = node.module or ""
            targets = [parent, *(f"{parent}.{a.name}" for a in node.names if a.name != "*")]
        elif isinstance(node, ast.Call) and (name := _dynamic_import(node)):
            targets = [name]
        if targets:
            yield Import(module, node.lineno, ast.unparse(node), tuple(targets))


def violations(imports: Iterable[Import], rules: Iterable[Rule] = RULES) -> list[str]:
    """One line per offending statement and rule: the module, the line and the import."""
    rules = list(rules)
    found = []
    for imp in imports:
        for rule in rules:
            if rule.applies_to(imp.module) and any(within(t, rule.forbidden) for t in imp.targets):
                found.append(f"{imp.module} (line {imp.line}) imports {rule.forbidden}: {imp.statement}"
                             f"  [{rule.name}: {rule.why}]")
    return found


def _module_of(path: Path) -> tuple[str, bool]:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def shared_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted(SHARED.rglob("*.py")):
        module, is_package = _module_of(path)
        found.extend(imports_of(path.read_text(encoding="utf-8"), module, is_package=is_package))
    return found


# The project ------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_shared_follows_the_layering_rules(rule: Rule) -> None:
    offenders = violations(shared_imports(), [rule])
    assert not offenders, "layering rule broken (docs/architecture.md §9.1):\n" + "\n".join(offenders)


def test_the_scan_sees_the_code() -> None:
    """Guards the scan itself: a wrong root or pattern would find nothing and pass."""
    modules = {imp.module for imp in shared_imports()}
    assert {"shared.db.paging", "shared.catalog", "shared.chat.service", "shared.tenancy.service"} <= modules


# The checker (so that it can fail) --------------------------------------------------------

_OFFENDING = '''
from __future__ import annotations

from typing import TYPE_CHECKING

import shared.db.paging
import shared.httpx_helpers

if TYPE_CHECKING:
    from shared.http.params import PageQuery


def handler() -> None:
    import importlib

    from functions.catalog import Function
    importlib.import_module("functions.chat.app")


from .. import http
'''


def test_detects_every_form_of_import() -> None:
    found = violations(imports_of(_OFFENDING, "shared.chat.service"))
    # One line per offending statement (ast.walk is breadth first, hence sorted); the clean
    # imports (shared.db, a module merely named like shared.http) are not reported.
    assert sorted(line.split(":", 1)[0] for line in found) == [
        "shared.chat.service (line 10) imports shared.http",   # TYPE_CHECKING block
        "shared.chat.service (line 16) imports functions",     # inside a function
        "shared.chat.service (line 17) imports functions",     # importlib with a literal name
        "shared.chat.service (line 20) imports shared.http",   # relative, in the module body
    ]
    assert any("from shared.http.params import PageQuery" in line for line in found)


def test_rules_apply_by_layer() -> None:
    source = "from shared.http.envelope import success_payload\nfrom functions.catalog import Http\n"
    # The HTTP layer itself may use shared.http, but not functions/.
    assert [v.split(":")[0] for v in violations(imports_of(source, "shared.http.api"))] == [
        "shared.http.api (line 2) imports functions"]
    # shared/db and nested domain modules are held to both rules; functions/ to neither.
    assert len(violations(imports_of(source, "shared.db.paging"))) == 2
    assert len(violations(imports_of(source, "shared.workflows.nodes.llm"))) == 2
    assert violations(imports_of(source, "functions.models.list_models")) == []
    # `from shared import http` loads shared.http too.
    assert violations(imports_of("from shared import http\n", "shared.knowledge.service"))
    # A package's relative import resolves from the package itself.
    assert violations(imports_of("from .http import envelope\n", "shared", is_package=True)) == []
    assert violations(imports_of("from ..http import envelope\n", "shared.models", is_package=True))


def test_allows_what_the_rules_allow() -> None:
    source = ("import shared.httpx_helpers\nfrom shared.db.paging import Page\nfrom shared.catalog import Http\n"
              "import importlib\nimportlib.import_module(name)\n")
    assert violations(imports_of(source, "shared.knowledge.service")) == []
