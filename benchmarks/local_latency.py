"""Local runtime latency: ``GET /health`` and an authenticated ``GET /api/v1/tenants/current``
over real HTTP, p50/p99 with 1 client and with 16 concurrent clients.

Goal: authenticated p50 <= 10 ms with one client.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REQUESTS = 300
CONCURRENT_CLIENTS = 16
PER_CLIENT = 50


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# What a benchmark's runtime changes from the defaults: the per-token rate limit, which no
# benchmark measures and every one of them would trip (one token sends 1,120 requests here in a
# few seconds, the ingestion run posts 1,000 documents). The limiter itself still runs.
BENCHMARK_LIMITS = {"RATE_LIMIT_BURST": "1000000", "RATE_LIMIT_PER_S": "1000000"}


def runtime_env(state_dir: Path) -> dict[str, str]:
    """The environment of a benchmark's local runtime (``python -m infra.local``)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PORT="0", STRATUS_STATE_DIR=str(state_dir), LOG_LEVEL="WARNING", **BENCHMARK_LIMITS)
    return env


def _start_runtime(state_dir: Path, **overrides: str) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    env = {**runtime_env(state_dir), **overrides}
    proc = subprocess.Popen([sys.executable, "-m", "infra.local"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    local_json = state_dir / "local.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if local_json.exists():
            info = json.loads(local_json.read_text())
            try:
                if httpx.get(f"{info['url']}/health", timeout=2).status_code == 200:
                    return proc, info
            except httpx.HTTPError:
                pass
        if proc.poll() is not None:
            raise RuntimeError("the local runtime exited during start-up")
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the local runtime did not start within 120 s")


def _sequential(client: httpx.Client, path: str, headers: dict[str, str]) -> list[float]:
    samples = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return samples


def _concurrent(url: str, path: str, headers: dict[str, str]) -> tuple[list[float], float]:
    samples: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        local = []
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(PER_CLIENT):
                started = time.perf_counter()
                response = client.get(path, headers=headers)
                local.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
        with lock:
            samples.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENT_CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples, len(samples) / (time.perf_counter() - started)


def run() -> None:
    print("== Local runtime latency (real HTTP, embedded PostgreSQL, in-process cache) ==")
    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as tmp:
        proc, info = _start_runtime(Path(tmp))
        try:
            url = info["url"]
            with httpx.Client(base_url=url, timeout=30) as client:
                created = client.post("/api/v1/tenants", json={"name": "bench"},
                                      headers={"Authorization": f"Bearer {info['admin_token']}"})
                owner = {"Authorization": f"Bearer {created.json()['data']['owner_token']}"}
                for path, headers in (("/health", {}), ("/api/v1/tenants/current", owner)):
                    for _ in range(20):  # warm: cold starts and the authorizer cache
                        client.get(path, headers=headers)
                    one = _sequential(client, path, headers)
                    many, rps = _concurrent(url, path, headers)
                    print(f"GET {path:<26} 1 client:  p50 {statistics.median(one):6.2f} ms  "
                          f"p99 {_percentile(one, 99):6.2f} ms  ({REQUESTS} requests)")
                    print(f"{'':30} {CONCURRENT_CLIENTS} clients: p50 {statistics.median(many):6.2f} ms  "
                          f"p99 {_percentile(many, 99):6.2f} ms  {rps:7.1f} req/s")
        finally:
            proc.terminate()
            proc.wait(30)
    print("goal: authenticated p50 <= 10 ms with 1 client")
