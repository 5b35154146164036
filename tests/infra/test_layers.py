"""The layer build: cross-platform pip install, rebuilt only when its stamp changes, and
only for the layers some function uses unless one is named."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from functions import catalog
from functions.catalog import LAYERS
from layers import build
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
    # An unused layer (today "embed", ~180 MB) is built only when asked for by name.
    for name in unused:
        assert build.layers_to_build([name]) == [name]
    with pytest.raises(KeyError):
        build.layers_to_build(["no-such-layer"])


def test_used_layers_follow_the_functions_given() -> None:
    probe = catalog.Function("probe", "functions.platform.health", "platform", catalog.Deploy(),
                             layers=("base", "embed"))
    assert build.used_layers([probe]) == ["base", "embed"]
    assert build.used_layers([]) == []


def test_the_app_creates_a_layer_version_only_for_used_layers(synth: Synth) -> None:
    versions = synth.templates["root"].find_resources("AWS::Lambda::LayerVersion").values()
    names = sorted(v["Properties"]["Description"].split(":")[0].removeprefix("Stratus ") for v in versions)
    assert names == sorted(build.used_layers())


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
