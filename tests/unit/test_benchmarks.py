"""Benchmarks measure what they name, and trip no limit they do not measure."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_benchmark_runtimes_do_not_hit_the_rate_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from benchmarks import ingestion_e2e, local_latency
    from shared.config import Settings

    env = local_latency.runtime_env(tmp_path)
    for name in ("RATE_LIMIT_BURST", "RATE_LIMIT_PER_S"):
        monkeypatch.setenv(name, env[name])
    settings = Settings()
    # One token's requests in a run, all within the burst: the bucket never empties.
    latency_requests = 20 + local_latency.REQUESTS + local_latency.CONCURRENT_CLIENTS * local_latency.PER_CLIENT
    assert settings.rate_limit_burst >= max(latency_requests, ingestion_e2e.DOCUMENTS * 2)
    assert settings.rate_limit_per_s >= settings.rate_limit_burst
    assert env["PORT"] == "0" and env["STRATUS_STATE_DIR"] == str(tmp_path) and "DATABASE_URL" not in env
