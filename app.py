#!/usr/bin/env python3
"""CDK app entry point (``cdk.json``: ``python3 app.py``; or ``.venv/bin/python app.py``).

Importing this module builds nothing: ``build_app()`` does, and running it as a script
builds and synthesizes. The stacks themselves are in ``infra/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from infra.node import ensure_node_on_path

if TYPE_CHECKING:
    from aws_cdk import App


def build_app(context: Mapping[str, Any] | None = None, *, outdir: str | None = None) -> App:
    # aws_cdk starts a Node process when imported: Node must be on PATH first.
    ensure_node_on_path()
    from infra.app import build_app as _build_app

    return _build_app(context, outdir=outdir)


if __name__ == "__main__":
    from layers.build import build_layers

    # A no-op when every layer's stamp is current (make layers ran); builds what is missing.
    build_layers()
    # Under the CDK CLI, CDK_OUTDIR says where the assembly goes; run by hand, write it
    # where the CLI would (cdk.out) rather than to a throwaway temporary directory.
    build_app(outdir=None if os.environ.get("CDK_OUTDIR") else "cdk.out").synth()
