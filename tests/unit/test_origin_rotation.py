"""Rotating the edge's origin secret without refusing CloudFront (README, "Rotating the origin
secret"): after put-secret-value the functions accept the new value (AWSCURRENT) and the old
one (AWSPREVIOUS, which CloudFront still sends until the deploy naming the new version), and
only the new one once the old version's label is removed. Against a stand-in for the Parameters
and Secrets extension's HTTP endpoint (its wire: GET /secretsmanager/get?secretId=&versionStage=,
the session token header, Secrets Manager's 4xx passed on for a missing label)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.local.invoker import LocalContext
from shared.auth.origin import ORIGIN_HEADER, expected_origin_secret, from_edge
from shared.aws.secrets import clear_secret_cache
from shared.config import reset_settings
from tests.support.events import load_event

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:origin-AbCdEf"
OLD, NEW = "old-origin-value-" + "a" * 31, "new-origin-value-" + "b" * 31


class FakeExtension:
    def __init__(self) -> None:
        self.stages: dict[str, str] = {"AWSCURRENT": OLD}
        self.requests: list[dict[str, Any]] = []
        self.failing_previous = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                fake.requests.append({"path": url.path, **query,
                                      "token": self.headers.get("X-Aws-Parameters-Secrets-Token")})
                if fake.failing_previous and query.get("versionStage") == "AWSPREVIOUS":
                    self.send_response(500)
                    self.end_headers()
                    return
                value = fake.stages.get(query.get("versionStage", "AWSCURRENT"))
                if url.path != "/secretsmanager/get" or query.get("secretId") != ARN or value is None:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b"ResourceNotFoundException: no secret value for the staging label")
                    return
                body = json.dumps({"ARN": ARN, "SecretString": value}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def put_secret_value(self, value: str) -> None:
        self.stages = {"AWSCURRENT": value, "AWSPREVIOUS": self.stages["AWSCURRENT"]}

    def retire_previous(self) -> None:
        self.stages.pop("AWSPREVIOUS")


@pytest.fixture
def extension(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeExtension]:
    fake = FakeExtension()
    monkeypatch.setenv("ORIGIN_SECRET_ARN", ARN)
    monkeypatch.delenv("ORIGIN_SECRET", raising=False)
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(fake.port))
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    reset_settings()
    clear_secret_cache()
    yield fake
    fake.server.shutdown()
    monkeypatch.undo()
    reset_settings()
    clear_secret_cache()


def _authorize(value: str) -> bool:
    from functions.platform.authorizer import handler

    event = load_event("apigw_authorizer_v2")
    event["headers"][ORIGIN_HEADER] = value
    event["headers"].pop("authorization", None)
    return bool(handler(event, LocalContext("authorizer", 256, 10))["isAuthorized"])


def test_before_a_rotation_only_the_current_value_passes(extension: FakeExtension) -> None:
    assert expected_origin_secret() == (OLD,)
    assert _authorize(OLD) and not _authorize(NEW)
    # The extension was asked for the current value and for AWSPREVIOUS (none yet), with the token.
    asked = {(r["secretId"], r.get("versionStage"), r["token"]) for r in extension.requests}
    assert asked == {(ARN, None, "session-token"), (ARN, "AWSPREVIOUS", "session-token")}


def test_during_a_rotation_both_values_pass_and_after_retiring_only_the_new(extension: FakeExtension) -> None:
    extension.put_secret_value(NEW)
    clear_secret_cache()  # what the 5-minute caches do by themselves
    assert expected_origin_secret() == (NEW, OLD)
    assert _authorize(OLD), "CloudFront still sends the old value until the deploy"
    assert _authorize(NEW), "and the new one once the deploy has updated the distribution"
    assert not _authorize("neither")
    extension.retire_previous()
    clear_secret_cache()
    assert expected_origin_secret() == (NEW,)
    assert _authorize(NEW) and not _authorize(OLD)


def test_a_failing_previous_read_accepts_the_current_value_only_and_is_retried(extension: FakeExtension) -> None:
    extension.put_secret_value(NEW)
    clear_secret_cache()
    extension.failing_previous = True
    # Not an outage (the current value still passes), and fail-closed for the old one...
    assert expected_origin_secret() == (NEW,)
    assert _authorize(NEW) and not _authorize(OLD)
    # ...only until the next request: a 5xx is not kept like "no previous version".
    extension.failing_previous = False
    assert expected_origin_secret() == (NEW, OLD)


def test_from_edge_takes_several_values_and_ignores_empty_ones() -> None:
    assert from_edge({ORIGIN_HEADER: OLD}, (NEW, OLD))
    assert not from_edge({ORIGIN_HEADER: ""}, ("", NEW))
    assert not from_edge({ORIGIN_HEADER: OLD}, ())
