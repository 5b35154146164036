"""What each function ships: the first-party code bundle and its dependency layers.

First-party code (``shared/``, ``functions/``) is copied into a content-addressed staging
directory, ``.build/code/<hash>/``, and that directory is the Lambda code asset. Pointing
the asset at the repository root with an exclude list would make CDK fingerprint the whole
tree (virtualenv included) on every synth and risk bundling whatever a developer leaves
lying around; an allow-list copy cannot.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

from functions.catalog import Function
from layers.build import layer_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_ROOT = REPO_ROOT / ".build" / "code"
MIGRATIONS_DIR = REPO_ROOT / "shared" / "db" / "migrations"

# The only packages bundled with every function.
FIRST_PARTY = ("shared", "functions")
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}

# Lambda's limit on a function's unzipped code plus all of its layers.
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
# The AWS Parameters and Secrets Lambda Extension layer is attached by ARN and so is not
# on disk to measure; the published arm64 extension is a few MB. This allowance keeps the
# size check honest without downloading it.
EXTENSION_ALLOWANCE_BYTES = 16 * 1024 * 1024


def _source_files() -> Iterator[Path]:
    for package in FIRST_PARTY:
        for dirpath, dirnames, filenames in os.walk(REPO_ROOT / package):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                if path.suffix not in _SKIP_SUFFIXES and not filename.startswith("."):
                    yield path


def _digest(files: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def stage_function_code() -> Path:
    """Copy the first-party packages into ``.build/code/<hash>`` (once per content) and
    return that directory. Older stagings are pruned."""
    files = list(_source_files())
    target = CODE_ROOT / _digest(files)[:16]
    if not target.is_dir():
        staging = CODE_ROOT / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        for path in files:
            destination = staging / path.relative_to(REPO_ROOT)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
        try:
            staging.rename(target)
        except OSError:
            # Another synth staged the same content first: identical by construction.
            shutil.rmtree(staging, ignore_errors=True)
    for old in CODE_ROOT.iterdir():
        if old != target and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    return target


def migrations_hash() -> str:
    """Hash of the SQL migrations: a custom resource property, so a deploy re-runs the
    migration function exactly when a migration file is added or changed."""
    return _digest(sorted(MIGRATIONS_DIR.glob("*.sql")))


def directory_bytes(path: Path) -> int:
    """Size on unzip: the sum of the regular files under ``path``."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for filename in filenames:
            file = Path(dirpath) / filename
            if not file.is_symlink():
                total += file.stat().st_size
    return total


@cache
def _layer_bytes(name: str) -> int:
    return directory_bytes(layer_dir(name))


def function_package_bytes(fn: Function, code_dir: Path) -> int:
    """Unzipped size of what ``fn`` runs with: its code, its layers and the extension allowance."""
    return directory_bytes(code_dir) + sum(_layer_bytes(name) for name in fn.layers) + EXTENSION_ALLOWANCE_BYTES
