"""The layer build: cross-platform pip install, rebuilt only when its stamp changes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from functions.catalog import LAYERS
from layers import build


def test_every_catalog_layer_is_built_with_python_under_python(layer_dirs: dict[str, Path]) -> None:
    assert set(layer_dirs) == set(LAYERS)
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
