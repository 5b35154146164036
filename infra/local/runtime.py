"""The whole platform on one machine (``make dev``): embedded PostgreSQL, moto's AWS on
loopback, the local API Gateway, scheduler and queue pollers, the same handlers as in AWS."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import secrets
import socket
import sys
import warnings
from pathlib import Path
from typing import Any

from infra.local.invoker import LocalInvoker
from infra.local.settings import LocalSettings

logger = logging.getLogger(__name__)

APP_PASSWORD_FILE = "app-db-password"  # noqa: S105 - a file name
# moto's port of the previous start: presigned upload URLs name it, so a form fetched before a
# restart must still reach S3 after it.
AWS_PORT_FILE = "aws-port"


def _port_free(port: int) -> bool:
    # As the server binds (SO_REUSEADDR, as werkzeug's HTTPServer): a port in TIME_WAIT is free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _app_conninfo(admin_url: str, password: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from shared.db.database import APP_ROLE

    params = conninfo_to_dict(admin_url)
    params.update(user=APP_ROLE, password=password)
    return make_conninfo("", **params)


class LocalRuntime:
    def __init__(self, settings: LocalSettings | None = None) -> None:
        self.settings = settings or LocalSettings()
        self.state_dir = self.settings.stratus_state_dir.resolve()
        self.invoker = LocalInvoker()
        self.admin_url = ""
        self.admin_token = ""
        self._pg: Any = None
        self._aws: Any = None
        self._scheduler: Any = None
        self._queues: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def start(self) -> None:
        # Private to the user: it holds the admin token and keys, and is embedded PostgreSQL's
        # XDG runtime directory, which platformdirs accepts only at 0700 (else a warning).
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        self._start_database()
        self._configure_functions()
        from infra.local.aws import LocalAws

        self._aws = LocalAws(self.state_dir, self.invoker, port=self._aws_port())
        self._aws.start()
        (self.state_dir / AWS_PORT_FILE).write_text(str(self._aws.port))
        from infra.local.queues import LocalQueues

        # Handlers are imported on first use, soon from the pollers', the scheduler's and the
        # server's threads at once. Powertools' event handler and data classes import each other,
        # and a second thread can then see one of them half-initialised (ImportError). Import
        # them here, on one thread, before any of those threads starts.
        importlib.import_module("aws_lambda_powertools.utilities.data_classes")
        importlib.import_module("aws_lambda_powertools.event_handler")
        importlib.import_module("aws_lambda_powertools.utilities.batch")
        # Lambda's SQS event source mappings: S3 uploads reach the indexing function this way.
        self._queues = LocalQueues(self.invoker, self._aws)
        self._queues.start()
        from infra.local.scheduler import LocalScheduler

        self._scheduler = LocalScheduler(self.invoker)
        self._scheduler.start()

    def _aws_port(self) -> int:
        """The configured port, else the previous start's when still free, else 0 (any)."""
        if self.settings.stratus_aws_port:
            return self.settings.stratus_aws_port
        try:
            previous = int((self.state_dir / AWS_PORT_FILE).read_text().strip())
        except (OSError, ValueError):
            return 0
        if 0 < previous < 65536 and _port_free(previous):
            return previous
        logger.warning("moto's previous port %d is taken: presigned URLs issued before this start "
                       "will not reach S3", previous)
        return 0

    def _start_database(self) -> None:
        from shared.platform.bootstrap import bootstrap
        from shared.platform.reconcile import reconcile_interrupted_work

        app_password: str | None = None
        if self.settings.database_url is not None:
            self.admin_url = self.settings.database_url.get_secret_value()
            password_file = self.state_dir / APP_PASSWORD_FILE
            if not password_file.exists():
                password_file.write_text(secrets.token_urlsafe(24))
                password_file.chmod(0o600)
            app_password = password_file.read_text().strip()
            app_url = _app_conninfo(self.admin_url, app_password)
        else:
            from infra.local.postgres import start_embedded_postgres

            self._pg = start_embedded_postgres(self.state_dir / "pg")
            self.admin_url, app_url = self._pg.admin_url, self._pg.app_url
        self.admin_token = self._admin_token()
        bootstrap(self.admin_url, app_password=app_password, admin_token=self.admin_token)
        reconcile_interrupted_work(self.admin_url)
        os.environ["DATABASE_URL"] = app_url

    def _admin_token(self) -> str:
        if self.settings.stratus_admin_token is not None:
            return self.settings.stratus_admin_token.get_secret_value()
        local_json = self.state_dir / "local.json"
        if local_json.exists():  # a second `make dev` keeps the same token
            token = json.loads(local_json.read_text()).get("admin_token")
            if token:
                return str(token)
        from shared.auth.tokens import generate_token

        return generate_token()

    def _configure_functions(self) -> None:
        from shared.aws.clients import reset_clients
        from shared.cache.factory import reset_cache_adapters
        from shared.config import reset_settings

        os.environ["STRATUS_RUNTIME"] = "local"
        # Powertools' metrics decorator warns on every invocation that published no metric, even
        # with metrics disabled (they are, locally): noise on each start and request.
        warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "stratus")
        os.environ.setdefault("LOG_LEVEL", self.settings.log_level)
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", self.settings.log_level)
        reset_settings()
        reset_cache_adapters()
        reset_clients()

    def write_local_json(self) -> Path:
        path = self.state_dir / "local.json"
        # Written aside and renamed: whoever watches for it (a script, the e2e tests) never
        # reads a half-written file.
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps({"url": self.url, "admin_token": self.admin_token}, indent=2))
        partial.chmod(0o600)
        partial.replace(path)
        return path

    def asgi_app(self) -> Any:
        # Under the import lock: pollers may be importing handlers on their threads.
        from infra.local.invoker import IMPORT_LOCK

        with IMPORT_LOCK:
            from infra.local.gateway import LocalGateway, streaming_mounts

            return LocalGateway(self.invoker, mounts=streaming_mounts())

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
        if self._queues is not None:
            # Before AWS goes away: a batch in flight still deletes its messages.
            self._queues.stop()
            self._queues = None
        if self._aws is not None:
            self._aws.stop()
        from shared.db.database import get_database, set_database

        # Nothing to close when no handler ever opened the database.
        with contextlib.suppress(Exception):
            get_database().close()
        set_database(None)
        if self._pg is not None:
            self._pg.stop()


def serve(runtime: LocalRuntime) -> None:
    import uvicorn

    config = uvicorn.Config(runtime.asgi_app(), host=runtime.settings.host, port=runtime.settings.port,
                            log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    config.load()
    sock = config.bind_socket()
    # Accepted sockets inherit TCP_NODELAY on Linux. Without it, a kept-alive connection
    # stalls ~40 ms per response (Nagle on the body write meets the client's delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # The bound port (PORT=0 picks one) is what local.json must carry.
    runtime.settings.port = sock.getsockname()[1]
    local_json = runtime.write_local_json()
    sys.stderr.write(
        f"\nStratus is running at {runtime.url}\n"
        f"  platform admin token: {runtime.admin_token}\n"
        f"  (also in {local_json}; Ctrl-C stops everything)\n\n")
    sys.stderr.flush()
    server.run(sockets=[sock])


def main() -> None:
    settings = LocalSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runtime = LocalRuntime(settings)
    try:
        runtime.start()
        serve(runtime)
    except KeyboardInterrupt:
        # Ctrl-C is how a user stops `make dev`: a clean stop, exit status 0.
        pass
    finally:
        runtime.stop()
