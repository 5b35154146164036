"""The cache's password RBAC (docs/adr/0048) against a real cluster-mode Valkey configured as
infra/data.py configures ElastiCache: ``default`` off, the application user with
APP_ACCESS_STRING and a password. The adapters work logged in; nothing works without the login."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import NoPermissionError, RedisClusterException

from shared.aws import secrets
from shared.cache import factory
from shared.cache.redis_adapter import (
    APP_ACCESS_STRING,
    APP_USER,
    RedisEventStream,
    RedisKeyValueStore,
    RedisRateLimiter,
    connect,
)
from shared.config import reset_settings
from tests.support.redis_server import start_cluster_redis

PASSWORD = "app-password-" + uuid.uuid4().hex
# Refused before any command runs: AUTH fails, or the first command answers NOAUTH (the cluster
# client's first command is its CLUSTER SLOTS, whose failure it wraps).
REFUSED = (redis.AuthenticationError, redis.ResponseError, RedisClusterException)


@pytest.fixture(scope="module")
def rbac_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, stop = start_cluster_redis(tmp_path_factory.mktemp("valkey-rbac"),
                                    users=("default off", f"{APP_USER} {APP_ACCESS_STRING} >{PASSWORD}"))
    try:
        yield url
    finally:
        stop()


@pytest.fixture
def app_client(rbac_url: str) -> Iterator[Any]:
    client = connect(rbac_url, cluster=True, username=APP_USER, password=lambda: PASSWORD)
    try:
        yield client
    finally:
        client.close()


def test_the_app_user_runs_every_adapter_operation(app_client: Any) -> None:
    tag = uuid.uuid4().hex
    kv = RedisKeyValueStore(app_client)
    assert kv.set(f"k:{tag}", "v", ttl_s=60) and kv.get(f"k:{tag}") == "v"
    assert not kv.set(f"k:{tag}", "w", only_if_absent=True)
    assert kv.incr(f"n:{tag}", 2, ttl_s=60) == 2 and kv.incr(f"n:{tag}") == 3  # EVALSHA / SCRIPT LOAD
    assert kv.ttl(f"n:{tag}") is not None and kv.delete(f"k:{tag}") and kv.get(f"k:{tag}") is None

    decision = RedisRateLimiter(app_client).acquire(f"b:{tag}", capacity=2, refill_per_s=1.0)  # TIME in a script
    assert decision.allowed

    stream = RedisEventStream(app_client)
    first = stream.append(tag, "message", {"n": 1})  # XADD, EXPIRE in a script
    assert app_client.xadd(stream.key(tag), {"type": "message", "data": '{"n": 2}'})  # plain XADD
    events = stream.read(tag)  # XREAD
    assert events[0].id == first and [e.data for e in events] == [{"n": 1}, {"n": 2}]


def test_the_app_user_cannot_run_dangerous_commands(app_client: Any) -> None:
    for command in (("FLUSHALL",), ("KEYS", "*"), ("CONFIG", "GET", "maxmemory")):
        with pytest.raises(NoPermissionError):
            app_client.execute_command(*command, target_nodes=app_client.get_primaries())


def test_without_credentials_or_with_a_wrong_password_the_server_refuses(rbac_url: str) -> None:
    for options in ({}, {"username": APP_USER, "password": lambda: "wrong-" + PASSWORD}):
        with pytest.raises(REFUSED):
            client = connect(rbac_url, cluster=True, retries=0, **options)  # type: ignore[arg-type]
            try:
                client.set("k", "v")
            finally:
                client.close()
    # A standalone client too (no cluster bootstrap to hide behind).
    plain = connect(rbac_url, cluster=False, retries=0)
    try:
        with pytest.raises(REFUSED):
            plain.set("k", "v")
    finally:
        plain.close()


def test_the_factory_logs_in_with_the_password_from_the_secret(
        rbac_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def fetch(secret_id: str) -> str:
        asked.append(secret_id)
        return PASSWORD

    # The secrets extension is not running here: the container's secret cache fetches through this.
    monkeypatch.setattr(secrets._secrets, "_fetch", fetch)
    secrets.clear_secret_cache()
    for name, value in {"REDIS_URL": rbac_url, "REDIS_USER": APP_USER, "REDIS_SECRET_ARN": "arn:redis"}.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    factory.reset_cache_adapters()
    try:
        kv = factory.get_kv_store()
        assert kv.set("factory:{x}", "ok") and kv.get("factory:{x}") == "ok"
        assert asked and set(asked) == {"arn:redis"}
    finally:
        factory.reset_cache_adapters()
        secrets.clear_secret_cache()
        for name in ("REDIS_URL", "REDIS_USER", "REDIS_SECRET_ARN"):
            monkeypatch.delenv(name)
        reset_settings()
