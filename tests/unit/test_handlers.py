"""Handlers invoked directly with the sample events (as Lambda invokes them)."""

from __future__ import annotations

import json

from infra.local.invoker import LocalContext
from tests.support.events import http_event, load_event


def context(name: str) -> LocalContext:
    return LocalContext(name, 256, 10)


def test_missing_authorizer_context_is_401_envelope() -> None:
    # With authorizer caching off API Gateway always runs the authorizer, which reports a
    # missing header as auth_missing_token: the middleware answers in the envelope.
    from functions.tenancy.get_current_tenant import handler

    event = http_event("GET", "/api/v1/tenants/current", authorizer={"auth_error": "auth_missing_token"})
    result = handler(event, context("tenants-get-current"))
    assert result["statusCode"] == 401
    body = json.loads(result["body"])
    assert body["code"] == "auth_missing_token" and body["request_id"] == event["requestContext"]["requestId"]


def test_unknown_auth_error_codes_are_reported_as_invalid_token() -> None:
    from functions.tenancy.list_members import handler

    event = http_event("GET", "/api/v1/members", authorizer={"auth_error": "something_else"})
    assert json.loads(handler(event, context("members-list"))["body"])["code"] == "auth_invalid_token"


def test_forbidden_before_validation() -> None:
    # Authorization is decided before the body is even parsed: a viewer's malformed body is 403.
    from functions.tenancy.create_member import handler

    event = http_event("POST", "/api/v1/members", raw_body="{oops", authorizer=load_event("apigw_http_v2")
                       ["requestContext"]["authorizer"]["lambda"] | {"role": "viewer"})
    result = handler(event, context("members-create"))
    assert result["statusCode"] == 403
    assert json.loads(result["body"])["code"] == "auth_permission_denied"


def test_default_route_answers_404_and_405() -> None:
    from functions.platform.default_route import handler

    event = load_event("apigw_http_v2")
    event["routeKey"] = "$default"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/api/v1/members/abc"
    event["requestContext"]["http"]["method"] = "GET"
    result = handler(event, context("default-route"))
    assert result["statusCode"] == 405 and result["headers"]["Allow"] == "DELETE, PATCH"
    event["rawPath"] = "/nope"
    result = handler(event, context("default-route"))
    assert result["statusCode"] == 404
    assert json.loads(result["body"])["code"] == "biz_route_not_found"


def test_authorizer_never_denies_without_a_header() -> None:
    from functions.platform.authorizer import bearer_token, handler

    event = load_event("apigw_authorizer_v2")
    del event["headers"]["authorization"]
    assert handler(event, context("authorizer")) == {"isAuthorized": True,
                                                     "context": {"auth_error": "auth_missing_token"}}
    assert bearer_token({"Authorization": "bearer  pat_abc "}) == "pat_abc"
    assert bearer_token({"authorization": "Token pat_abc"}) == ""
    assert bearer_token({}) is None


def test_health_answers_503_when_the_database_is_unreachable() -> None:
    from contextlib import contextmanager

    import pytest

    from shared.errors import Unavailable
    from shared.platform.health import check_health

    class DownDatabase:
        @contextmanager
        def transaction(self, tenant_id: object = None):  # type: ignore[no-untyped-def]
            raise OSError("connection refused")
            yield

        def close(self) -> None:
            pass

    with pytest.raises(Unavailable) as err:
        check_health(DownDatabase())
    assert err.value.status == 503 and err.value.code == "sys_database_unreachable"


def test_admin_token_secret_prefix_rule() -> None:
    from functions.platform.db_migrate import admin_token_from_secret

    assert admin_token_from_secret({"prefix": "pat_", "token": "a" * 48}) == "pat_" + "a" * 48
    assert admin_token_from_secret({"token": "pat_" + "b" * 40}) == "pat_" + "b" * 40


def test_migration_custom_resource_delete_keeps_the_schema() -> None:
    from functions.platform.db_migrate import PHASE_KEY, PHYSICAL_ID, SKIP, handler

    event = load_event("cfn_custom_resource_create")
    event["RequestType"] = "Delete"
    answer = handler(event, context("db-migrate"))
    assert answer == {"PhysicalResourceId": PHYSICAL_ID, PHASE_KEY: SKIP}
    # The waiter's poll of a Delete is complete at once: nothing touched the database.
    assert handler({**event, **answer}, context("db-migrate")) == {"IsComplete": True}


def test_secrets_are_cached_for_a_bounded_time() -> None:
    from shared.aws.secrets import SecretCache

    calls: list[str] = []

    def fetch(secret_id: str) -> str:
        calls.append(secret_id)
        return f"v{len(calls)}"

    clock = [1000.0]
    cache = SecretCache(fetch, ttl_s=300, clock=lambda: clock[0])
    assert cache.get("s") == "v1"
    clock[0] += 299
    assert cache.get("s") == "v1"
    clock[0] += 2
    assert cache.get("s") == "v2"
    cache.clear()
    assert cache.get("s") == "v3" and calls == ["s", "s", "s"]


def test_migration_rollback_and_secret_changes_are_recognised() -> None:
    from functions.platform.db_migrate import changed_secrets, is_rollback
    from shared.db.migrate import migrations_hash

    bundled = migrations_hash()
    event = load_event("cfn_custom_resource_create")
    props = {**event["ResourceProperties"], "MigrationsHash": bundled, "AppSecretArn": "arn:app-1"}
    update = {**event, "RequestType": "Update", "ResourceProperties": props, "OldResourceProperties": dict(props)}
    assert not is_rollback(update, bundled) and changed_secrets(update) == []
    # The previous template's hash arrives while this code bundles another: a rollback.
    rollback = {**update, "ResourceProperties": {**props, "MigrationsHash": "f" * 64}}
    assert is_rollback(rollback, bundled)
    # A Create is never a rollback, whatever it carries (a first deploy applies everything).
    assert not is_rollback({**rollback, "RequestType": "Create"}, bundled)
    replaced = {**update, "ResourceProperties": {**props, "AppSecretArn": "arn:app-2"}}
    assert changed_secrets(replaced) == ["AppSecretArn"]
