"""The local runtime as a user starts it (``python -m infra.local``), over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningRuntime:
    proc: subprocess.Popen[bytes]
    url: str
    admin_token: str
    state_dir: Path
    log: Path

    def stop(self) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode


def start_runtime(state_dir: Path, **env: str) -> RunningRuntime:
    log = state_dir.parent / f"{state_dir.name}-runtime.log"
    # Not the test process's own database, nor the runtime directory its embedded PostgreSQL
    # chose (a pytest temp dir, later 0755): the runtime picks its own, as `make dev` does.
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "XDG_RUNTIME_DIR")}
    full_env.update({"PORT": "0", "STRATUS_STATE_DIR": str(state_dir), "LOG_LEVEL": "WARNING", **env})
    local_json = state_dir / "local.json"
    # A restart finds the previous local.json (and must reuse its token): wait for a new one.
    previous = local_json.stat().st_mtime_ns if local_json.exists() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "infra.local"], cwd=ROOT, env=full_env,
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"runtime exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        if local_json.exists() and local_json.stat().st_mtime_ns != previous:
            info: dict[str, Any] = json.loads(local_json.read_text())
            try:
                if httpx.get(f"{info['url']}/health", timeout=5).status_code == 200:
                    return RunningRuntime(proc, info["url"], info["admin_token"], state_dir, log)
            except httpx.HTTPError:
                pass
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"runtime did not start in time:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    running = start_runtime(tmp_path_factory.mktemp("e2e") / "state")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    """The scripted OpenAI-protocol model server, one per module (a module may define its own)."""
    with FakeOpenAI() as server:
        yield server
