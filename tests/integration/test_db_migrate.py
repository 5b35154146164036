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


def _context() -> LocalContext:
    return LocalContext("db-migrate", 256, 900)


def _provider(event: dict[str, Any]) -> dict[str, Any]:
    """What the CDK Provider framework does: onEvent, then isComplete polls with the request
    merged with onEvent's answer until complete (a handful here: nothing is left to apply)."""
    from functions.platform.db_migrate import handler

    started = handler(event, _context())
    waiter_event = {**event, **started}
    for _ in range(5):
        done = handler(waiter_event, _context())
        if done["IsComplete"]:
            return {**waiter_event, **done, "Data": {**started.get("Data", {}), **done.get("Data", {})}}
    raise AssertionError("isComplete never completed")


def _admin_token_installed(pg: Any, token: str) -> bool:
    with psycopg.connect(pg.admin_url) as conn:
        row = conn.execute("SELECT count(*) FROM platform_admin_tokens WHERE token_hash = %s",
                           (hash_token(token),)).fetchone()
    return row == (1,)


def _update(event: dict[str, Any], *, migrations_hash: str, old: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {**event["ResourceProperties"], "MigrationsHash": migrations_hash, "AdminSecretArn": "arn:owner",
             "AppSecretArn": "arn:app", "AdminTokenSecretArn": "arn:admin"}
    return {**event, "RequestType": "Update", "PhysicalResourceId": "stratus-database-schema",
            "ResourceProperties": props, "OldResourceProperties": old or dict(props)}


def test_create_applies_migrations_and_installs_admin_token(extension: dict[str, Any], pg: Any) -> None:
    from functions.platform.db_migrate import PHASE_KEY, PHYSICAL_ID, RUN, handler

    event = load_event("cfn_custom_resource_create")
    started = handler(event, _context())
    # onEvent decides and does no database work: the waiter's polls do it.
    assert started == {"PhysicalResourceId": PHYSICAL_ID, PHASE_KEY: RUN}
    result = _provider(event)
    assert result["PhysicalResourceId"] == PHYSICAL_ID
    assert result["Data"]["AppliedMigrations"] == ""  # already applied: nothing to do twice
    assert int(result["Data"]["ModelCount"]) > 0
    assert _admin_token_installed(pg, "pat_" + "A" * 48)


def test_rollback_update_is_a_no_op(extension: dict[str, Any], pg: Any) -> None:
    """CloudFormation rolling back to the previous template sends the previous hash while the
    function already runs the new code: success, and the database is not touched (the owner
    secret is gone here, so any connection attempt would fail the test)."""
    from functions.platform.db_migrate import PHASE_KEY, SKIP, handler

    del extension["arn:owner"]
    event = _update(load_event("cfn_custom_resource_create"), migrations_hash="0" * 64)
    answer = handler(event, _context())
    assert answer[PHASE_KEY] == SKIP and answer["Data"] == {"Skipped": "rollback"}
    assert handler({**event, **answer}, _context()) == {"IsComplete": True}


def test_rollback_with_a_replaced_secret_reinstalls_the_credentials(extension: dict[str, Any], pg: Any) -> None:
    from functions.platform.db_migrate import PHASE_KEY, SKIP, handler

    extension["arn:admin-previous"] = {"prefix": "pat_", "token": "B" * 48}
    event = _update(load_event("cfn_custom_resource_create"), migrations_hash="0" * 64)
    event["ResourceProperties"]["AdminTokenSecretArn"] = "arn:admin-previous"
    answer = handler(event, _context())
    assert answer[PHASE_KEY] == SKIP
    assert _admin_token_installed(pg, "pat_" + "B" * 48)


def test_update_with_a_replaced_secret_installs_it(extension: dict[str, Any], pg: Any) -> None:
    from shared.db.migrate import migrations_hash

    extension["arn:admin-new"] = {"prefix": "pat_", "token": "C" * 48}
    event = _update(load_event("cfn_custom_resource_create"), migrations_hash=migrations_hash())
    old = dict(event["ResourceProperties"])
    event["ResourceProperties"]["AdminTokenSecretArn"] = "arn:admin-new"
    event["OldResourceProperties"] = old
    result = _provider(event)
    assert result["IsComplete"] is True
    assert _admin_token_installed(pg, "pat_" + "C" * 48)


def test_missing_secret_fails_the_deploy(extension: dict[str, Any]) -> None:
    from functions.platform.db_migrate import handler
    from shared.errors import Unavailable

    del extension["arn:app"]
    event = load_event("cfn_custom_resource_create")
    started = handler(event, _context())
    with pytest.raises(Unavailable):  # the waiter's poll fails, and with it the deploy
        handler({**event, **started}, _context())
