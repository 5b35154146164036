"""One CDK synthesis per test session (it costs ~10 s of Node), after building the layers.

The layers are built for real (pip, wheels for manylinux aarch64/cp312; downloaded once,
then skipped by their stamps) because the package-size test measures them on disk.
"""

from __future__ import annotations

from infra.node import ensure_node_on_path

# Before anything imports aws_cdk: jsii starts Node at import time.
ensure_node_on_path()

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from layers.build import build_layers  # noqa: E402
from tests.infra.support import Synth, synthesize  # noqa: E402


@pytest.fixture(scope="session")
def layer_dirs() -> dict[str, Path]:
    return build_layers()


@pytest.fixture(scope="session")
def synth(layer_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize(tmp_path_factory.mktemp("cdk.out"))
