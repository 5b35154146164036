"""Build the catalog's dependency layers into ``.build/layers/<name>/python``.

``python -m layers.build [--force] [--all] [NAME ...]``

By default only the layers some catalog function uses are built (the CDK app creates no
layer that no function uses either): a declared but unused layer, such as the ~180 MB
``embed`` layer, is built only when named (``python -m layers.build embed``) or with ``--all``.

Layers are built with pip's cross-platform install (``--platform manylinux… --only-binary``),
so no Docker and no Lambda-like build image are needed: only wheels published for the Lambda
target (CPython 3.12 on arm64) are accepted. A layer is rebuilt only when its stamp (a hash
of the requirements and of every pip option that shapes the result) changed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from functions import catalog
from functions.catalog import LAYERS, Function, Layer

logger = logging.getLogger("layers.build")

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_ROOT = REPO_ROOT / ".build" / "layers"

# The Lambda target. Must agree with infra/functions.py (runtime python3.12, arm64).
PYTHON_VERSION = "3.12"
IMPLEMENTATION = "cp"
# python3.12 Lambda runs on Amazon Linux 2023 (glibc 2.34): manylinux2014 (glibc 2.17) and
# manylinux_2_28 wheels both load there. Several wheels (psycopg-binary ≥ 3.3) are published
# for aarch64 only as manylinux_2_28, so both tags are needed.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# Bump to force every layer to rebuild after a change to how layers are assembled.
RECIPE_VERSION = "1"


def layer_dir(name: str) -> Path:
    """The layer's asset directory (what Lambda unpacks under /opt)."""
    return BUILD_ROOT / name


def _stamp_path(name: str) -> Path:
    # Kept beside, not inside, the asset directory so the stamp never changes the asset hash.
    return BUILD_ROOT / f"{name}.stamp"


def pip_command(layer: Layer, target: Path) -> list[str]:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-input"]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    command += [
        "--implementation", IMPLEMENTATION,
        "--python-version", PYTHON_VERSION,
        "--only-binary=:all:",
        # The host interpreter is not 3.12: byte-code it compiled would never be used.
        "--no-compile",
        "--target", str(target),
        *layer.requirements,
    ]
    return command


def stamp_of(layer: Layer) -> str:
    recipe = {
        "recipe": RECIPE_VERSION,
        "requirements": sorted(layer.requirements),
        "platforms": PLATFORMS,
        "python": PYTHON_VERSION,
        "implementation": IMPLEMENTATION,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def is_current(layer: Layer) -> bool:
    stamp = _stamp_path(layer.name)
    return (stamp.is_file() and stamp.read_text().strip() == stamp_of(layer)
            and (layer_dir(layer.name) / "python").is_dir())


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Serialise builds: ``make layers`` and a test session may start one at the same time."""
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with open(BUILD_ROOT / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prune(python_dir: Path) -> None:
    """Drop what Lambda never loads: console scripts and stray caches."""
    shutil.rmtree(python_dir / "bin", ignore_errors=True)
    for cache in python_dir.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def build_layer(layer: Layer, *, force: bool = False) -> Path:
    """Build one layer unless its stamp is unchanged; returns its asset directory."""
    target = layer_dir(layer.name)
    if not force and is_current(layer):
        logger.info("layer %s is up to date", layer.name)
        return target
    # Build beside the final directory and swap it in, so an interrupted build never leaves
    # a half-installed layer that a later synth would package.
    staging = BUILD_ROOT / f".{layer.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    logger.info("building layer %s: %s", layer.name, " ".join(layer.requirements))
    try:
        subprocess.run(pip_command(layer, staging / "python"), check=True, cwd=REPO_ROOT)  # noqa: S603
        _prune(staging / "python")
        _stamp_path(layer.name).unlink(missing_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _stamp_path(layer.name).write_text(stamp_of(layer) + "\n")
    return target


def used_layers(functions: Iterable[Function] | None = None) -> list[str]:
    """The declared layers at least one function uses, in ``LAYERS`` order. Reads
    ``catalog.FUNCTIONS`` at call time (tests extend the catalog)."""
    used = {name for fn in (catalog.FUNCTIONS if functions is None else functions) for name in fn.layers}
    return [name for name in LAYERS if name in used]


def layers_to_build(names: Iterable[str] | None = None, *, everything: bool = False) -> list[str]:
    """What a build covers: the named layers, else every declared layer with ``everything``,
    else the used ones. Naming an unused layer is allowed: that is how it is built on purpose."""
    wanted = list(dict.fromkeys(names)) if names else (list(LAYERS) if everything else used_layers())
    unknown = sorted(set(wanted) - set(LAYERS))
    if unknown:
        raise KeyError(f"unknown layers {unknown}; the catalog declares {sorted(LAYERS)}")
    return wanted


def build_layers(names: Iterable[str] | None = None, *, force: bool = False,
                 everything: bool = False) -> dict[str, Path]:
    """Build the named catalog layers (by default those some function uses; every declared
    one with ``everything``); returns name → asset directory."""
    wanted = layers_to_build(names, everything=everything)
    skipped = [name for name in LAYERS if name not in wanted]
    if skipped and not names:
        logger.info("not building %s: used by no catalog function (build by name to have it anyway)",
                    ", ".join(skipped))
    with _build_lock():
        return {name: build_layer(LAYERS[name], force=force) for name in wanted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*",
                        help="layers to build, used or not (default: the layers some catalog function uses)")
    parser.add_argument("--all", dest="everything", action="store_true",
                        help="build every layer the catalog declares, used or not")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp is unchanged")
    args = parser.parse_args(argv)
    if args.names and args.everything:
        parser.error("give layer names or --all, not both")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, path in build_layers(args.names, force=args.force, everything=args.everything).items():
        size_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1_000_000
        logger.info("%-8s %7.1f MB  %s", name, size_mb, path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
