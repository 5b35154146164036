"""Domains reach each other through contracts: no domain module imports another domain's
repository, service or API models (its contract module, errors and plain types are fine).
Wiring modules compose the container and may name implementations."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ("agents", "chat", "conversations", "files", "knowledge", "models", "tenancy", "platform", "maintenance",
           "workflows", "tools")
INTERNAL = ("repository", "service", "api")
# The one known crossing: the platform bootstrap seeds the model catalog as an operator.
EXCEPTIONS = {"shared/platform/bootstrap.py"}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def crossings(root: Path = ROOT) -> list[str]:
    found = []
    for domain in DOMAINS:
        for path in sorted((root / "shared" / domain).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if path.name == "wiring.py" or relative in EXCEPTIONS:
                continue
            for name in _imports(path):
                parts = name.split(".")
                if (len(parts) >= 3 and parts[0] == "shared" and parts[1] in DOMAINS and parts[1] != domain
                        and parts[2] in INTERNAL):
                    found.append(f"{relative} imports {'.'.join(parts[:3])}")
    return sorted(set(found))


def test_domains_use_each_others_contracts_only() -> None:
    assert crossings() == []


def test_the_check_sees_a_crossing(tmp_path: Path) -> None:
    chat = tmp_path / "shared" / "chat"
    chat.mkdir(parents=True)
    (chat / "bad.py").write_text("from shared.conversations import repository as repo\n"
                                 "from shared.knowledge.api import RetrieveRequest\n"
                                 "from shared.knowledge.contract import Retriever\n")
    assert crossings(tmp_path) == ["shared/chat/bad.py imports shared.conversations.repository",
                                   "shared/chat/bad.py imports shared.knowledge.api"]
