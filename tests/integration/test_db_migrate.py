"""The deploy-time migration function, end to end against the embedded PostgreSQL, reading
its secrets from a local server that speaks the Parameters and Secrets Lambda Extension's
HTTP protocol (the one boundary this machine cannot reach)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest

from infra.local.invoker import LocalContext
from shared.auth.tokens import hash_token
from shared.config import reset_settings
from tests.support.events import load_event

SESSION_TOKEN = "session-token-for-the-extension"


@pytest.fixture
def extension(pg: Any, admin_token: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, dict[str, Any]]]:
    secrets: dict[str, dict[str, Any]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the extension's API: GET /secretsmanager/get?secretId=
            url = urlparse(self.path)
            secret_id = parse_qs(url.query).get("secretId", [""])[0]
            if self.headers.get("X-Aws-Parameters-Secrets-Token") != SESSION_TOKEN:
                self.send_response(401)
                self.end_headers()
                return
            if url.path != "/secretsmanager/get" or secret_id not in secrets:
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps({"ARN": secret_id, "Name": secret_id, "SecretString": json.dumps(secrets[secret_id]),
                               "VersionStages": ["AWSCURRENT"]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host = psycopg.conninfo.conninfo_to_dict(pg.admin_url)["host"]
    secrets["arn:owner"] = {"username": "postgres", "password": "unused-with-trust-auth", "host": host,
                            "port": 5432, "engine": "postgres"}
    secrets["arn:app"] = {"username": "stratus_app", "password": "app-password-from-secret"}
    secrets["arn:admin"] = {"prefix": "pat_", "token": "A" * 48}
    for key, value in {"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(server.server_address[1]),
                       "AWS_SESSION_TOKEN": SESSION_TOKEN, "DATABASE_ADMIN_SECRET_ARN": "arn:owner",
                       "DATABASE_SECRET_ARN": "arn:app", "ADMIN_TOKEN_SECRET_ARN": "arn:admin"}.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    from shared.aws.secrets import clear_secret_cache

    clear_secret_cache()
    yield secrets
    server.shutdown()
    # The function replaced the platform admin token; other tests use the session's.
    from shared.platform.bootstrap import install_admin_token

    install_admin_token(pg.admin_url, admin_token)
    monkeypatch.undo()
    reset_settings()
    clear_secret_cache()


def test_create_applies_migrations_and_installs_admin_token(extension: dict[str, Any], pg: Any) -> None:
    from functions.platform.db_migrate import PHYSICAL_ID, handler

    result = handler(load_event("cfn_custom_resource_create"), LocalContext("db-migrate", 256, 300))
    assert result["PhysicalResourceId"] == PHYSICAL_ID
    assert result["Data"]["AppliedMigrations"] == ""  # already applied: nothing to do twice
    with psycopg.connect(pg.admin_url) as conn:
        row = conn.execute("SELECT count(*) FROM platform_admin_tokens WHERE token_hash = %s",
                           (hash_token("pat_" + "A" * 48),)).fetchone()
    assert row == (1,)


def test_missing_secret_fails_the_deploy(extension: dict[str, Any]) -> None:
    from functions.platform.db_migrate import handler
    from shared.errors import Unavailable

    del extension["arn:app"]
    with pytest.raises(Unavailable):
        handler(load_event("cfn_custom_resource_create"), LocalContext("db-migrate", 256, 300))
