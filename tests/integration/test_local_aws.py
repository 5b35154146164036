"""The local runtime's AWS: moto served on loopback, Step Functions running the catalog's
Lambda handlers in-process, the scheduled purge, presigned uploads from an outside HTTP
client, and the S3 mirror that outlives a restart."""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from infra.local.aws import PAYLOADS_BUCKET, UPLOADS_BUCKET, LocalAws
from infra.local.invoker import LocalInvoker
from infra.local.s3_mirror import natural_path
from infra.local.scheduler import LocalScheduler
from shared.aws.clients import client, reset_clients
from shared.config import get_settings, reset_settings
from tests.support.stepfunctions import wait_for_execution

Sql = Callable[..., list[tuple[Any, ...]]]


@dataclass
class Runtime:
    state_dir: Path
    invoker: LocalInvoker
    aws: LocalAws


@pytest.fixture(scope="module")
def runtime(app_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    saved_env = dict(os.environ)
    state_dir = tmp_path_factory.mktemp("stratus-state")
    invoker = LocalInvoker()
    rt = Runtime(state_dir, invoker, LocalAws(state_dir, invoker))
    rt.aws.start()
    try:
        yield rt
    finally:
        rt.aws.stop()
        # LocalAws gives back what it set; this also covers anything a failed test left.
        os.environ.clear()
        os.environ.update(saved_env)
        reset_settings()
        reset_clients()


# Wiring ------------------------------------------------------------------------------------
def test_settings_and_clients_point_at_the_local_server(runtime: Runtime) -> None:
    settings = get_settings()
    assert settings.uploads_bucket == UPLOADS_BUCKET
    assert settings.purge_state_machine_arn == runtime.aws.state_machine_arn("purge")
    assert os.environ["AWS_ENDPOINT_URL"] == runtime.aws.endpoint_url
    assert os.environ["MOTO_PORT"] == runtime.aws.endpoint_url.rsplit(":", 1)[1]
    buckets = {b["Name"] for b in client("s3").list_buckets()["Buckets"]}
    assert {UPLOADS_BUCKET, PAYLOADS_BUCKET} <= buckets
    functions = {f["FunctionName"] for f in client("lambda").list_functions()["Functions"]}
    assert {"purge-start", "purge-table", "health"} <= functions
    definition = client("stepfunctions").describe_state_machine(
        stateMachineArn=runtime.aws.state_machine_arn("purge"))["definition"]
    assert runtime.aws.function_arn("purge-table") in definition
    assert "${fn:" not in definition


def test_direct_lambda_invoke_runs_the_catalog_handler(runtime: Runtime) -> None:
    lam = client("lambda")
    item = {"table": "api_keys", "cutoff": "2000-01-01T00:00:00+00:00", "batch_size": 10}
    response = lam.invoke(FunctionName="purge-table", Payload=json.dumps(item))
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {**item, "cutoff": "2000-01-01T00:00:00Z", "deleted": 0,
                                                      "done": True}

    failed = lam.invoke(FunctionName=runtime.aws.function_arn("purge-table"),
                        Payload=json.dumps({"table": 1}))
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"] == "ValidationError"
    assert "PurgeItem" in error["errorMessage"]

    # Asynchronous and dry-run invocations answer as Lambda does.
    assert lam.invoke(FunctionName="purge-table", InvocationType="Event",
                      Payload=json.dumps(item))["StatusCode"] == 202
    assert lam.invoke(FunctionName="purge-table", InvocationType="DryRun",
                      Payload=json.dumps(item))["StatusCode"] == 204

    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


# a. The scheduled purge through Step Functions ---------------------------------------------
def test_scheduled_purge_runs_the_state_machine_and_purges_old_soft_deleted_rows(
        runtime: Runtime, admin_sql: Sql) -> None:
    tenant, old_tenant = uuid.uuid4(), uuid.uuid4()
    admin_sql("INSERT INTO tenants (id, name) VALUES (%s, 'purge live')", (tenant,))
    admin_sql("INSERT INTO tenants (id, name, deleted_at) "
              "VALUES (%s, 'purge old', now() - interval '60 days')", (old_tenant,))
    ages = {"old": "60 days", "recent": "1 day", "live": None}
    members: dict[str, uuid.UUID] = {}
    keys: dict[str, uuid.UUID] = {}
    for label, age in ages.items():
        user = uuid.uuid4()
        admin_sql("INSERT INTO users (id, email) VALUES (%s, %s)", (user, f"{user}@example.com"))
        members[label], keys[label] = uuid.uuid4(), uuid.uuid4()
        deleted_at = f"now() - interval '{age}'" if age else "NULL"
        admin_sql(f"INSERT INTO members (id, tenant_id, user_id, role, deleted_at) "
                  f"VALUES (%s, %s, %s, 'developer', {deleted_at})", (members[label], tenant, user))
        admin_sql(f"INSERT INTO api_keys (id, tenant_id, user_id, name, token_hash, prefix, deleted_at) "
                  f"VALUES (%s, %s, %s, %s, %s, 'pat_x', {deleted_at})",
                  (keys[label], tenant, user, f"key {label}", secrets.token_bytes(32)))

    started = LocalScheduler(runtime.invoker).fire("purge-start")
    tables = started["tables"]
    # Children before parents (foreign keys); later migrations may register more tables.
    assert tables.index("api_keys") < tables.index("members") < tables.index("tenants")
    execution = wait_for_execution(started["execution_arn"])
    assert execution["status"] == "SUCCEEDED", execution
    results = {r["table"]: r for r in json.loads(execution["output"])["results"]}
    assert set(results) == set(tables)
    assert all(r["done"] for r in results.values())
    assert results["api_keys"]["deleted"] >= 1 and results["members"]["deleted"] >= 1
    assert results["tenants"]["deleted"] >= 1

    def remaining(table: str, ids: dict[str, uuid.UUID]) -> set[str]:
        rows = admin_sql(f"SELECT id FROM {table} WHERE id = ANY(%s)", (list(ids.values()),))
        found = {row[0] for row in rows}
        return {label for label, row_id in ids.items() if row_id in found}

    assert remaining("members", members) == {"recent", "live"}
    assert remaining("api_keys", keys) == {"recent", "live"}
    assert remaining("tenants", {"live": tenant, "old": old_tenant}) == {"live"}

    # The execution is named after the day: a second firing the same day starts nothing.
    sfn = client("stepfunctions")
    machine = runtime.aws.state_machine_arn("purge")
    before = sfn.list_executions(stateMachineArn=machine)["executions"]
    again = LocalScheduler(runtime.invoker).fire("purge-start")
    assert again["execution_arn"] == started["execution_arn"]
    after = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert len(after) == len(before)
    assert [e["executionArn"] for e in after].count(started["execution_arn"]) == 1


# b. A failing Lambda task fails the execution with the handler's errorType -----------------
@pytest.mark.parametrize(("table", "error_type", "message"), [
    ("not_registered", "InvalidParameterValue", "table not_registered is not registered for purging"),
    ("Not A Table", "ValidationError", "String should match pattern"),
])
def test_failing_lambda_task_fails_the_execution_with_its_error_type(
        runtime: Runtime, table: str, error_type: str, message: str) -> None:
    item = {"table": table, "cutoff": "2026-01-01T00:00:00+00:00", "batch_size": 10}
    # Always named: moto 5.2.5 names an unnamed execution "None", so a second one collides.
    started = client("stepfunctions").start_execution(
        stateMachineArn=runtime.aws.state_machine_arn("purge"), name=f"failing-{uuid.uuid4()}",
        input=json.dumps({"items": [item]}))
    execution = wait_for_execution(started["executionArn"])
    assert execution["status"] == "FAILED"
    assert execution["error"] == error_type
    cause = json.loads(execution["cause"])
    assert cause["errorType"] == error_type
    assert message in cause["errorMessage"]


# c. Presigned uploads from an outside HTTP client ------------------------------------------
def test_presigned_post_and_put_from_an_outside_http_client(runtime: Runtime) -> None:
    s3 = client("s3")
    bucket = get_settings().uploads_bucket
    assert bucket
    post = s3.generate_presigned_post(bucket, "incoming/t1/${filename}", ExpiresIn=300,
                                      Conditions=[["content-length-range", 1, 1024]])
    assert post["url"].startswith(runtime.aws.endpoint_url)
    with httpx.Client(timeout=10) as http:
        ok = http.post(post["url"], data=post["fields"],
                       files={"file": ("doc.txt", b"hello world", "text/plain")})
        assert ok.status_code == 204, ok.text
        assert s3.get_object(Bucket=bucket, Key="incoming/t1/doc.txt")["Body"].read() == b"hello world"

        too_big = http.post(post["url"], data=post["fields"],
                            files={"file": ("big.bin", b"x" * 2048, "application/octet-stream")})
        assert too_big.status_code == 400
        assert "<Code>EntityTooLarge</Code>" in too_big.text
        empty = http.post(post["url"], data=post["fields"], files={"file": ("empty.bin", b"", "text/plain")})
        assert empty.status_code == 400
        assert "<Code>EntityTooSmall</Code>" in empty.text
        elsewhere = http.post(post["url"], data={**post["fields"], "key": "other/escape.txt"},
                              files={"file": ("escape.txt", b"x", "text/plain")})
        assert elsewhere.status_code == 403
        assert "Policy Condition failed" in elsewhere.text
        unlisted = http.post(post["url"], data={**post["fields"], "acl": "public-read"},
                             files={"file": ("acl.txt", b"x", "text/plain")})
        assert unlisted.status_code == 403
        assert "Extra input fields: acl" in unlisted.text
        refused = ("incoming/t1/big.bin", "incoming/t1/empty.bin", "other/escape.txt", "incoming/t1/acl.txt")
        for key in refused:
            with pytest.raises(ClientError):
                s3.head_object(Bucket=bucket, Key=key)

        url = s3.generate_presigned_url("put_object", ExpiresIn=300, Params={
            "Bucket": bucket, "Key": "incoming/t1/put.bin", "ContentType": "application/octet-stream"})
        body = bytes(range(256))
        put = http.put(url, content=body, headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 200, put.text
    stored = s3.get_object(Bucket=bucket, Key="incoming/t1/put.bin")
    assert stored["Body"].read() == body
    assert stored["ContentType"] == "application/octet-stream"


# d. The S3 mirror ----------------------------------------------------------------------------
def test_natural_paths_never_leave_the_bucket_folder() -> None:
    for key in ("../../etc/passwd", "a/../../b", "/abs", "./x", "a//b", "..", "%2E%2E/x", "c:\\win"):
        path = natural_path(key)
        assert path is not None
        assert not path.is_absolute()
        assert ".." not in path.parts and "." not in path.parts
    assert natural_path("docs/report 2026.pdf") == Path("docs/report 2026.pdf")
    # Distinct keys never share a path.
    keys = ["..", "%2E%2E", ".", "%2E", "", "%", "a/", "a/%", "a%2Fb", "a/b"]
    assert len({natural_path(key) for key in keys}) == len(keys)
    assert natural_path("x" * 300) is None


def test_s3_objects_are_mirrored_and_restored_after_a_restart(runtime: Runtime) -> None:
    s3 = client("s3")
    mirror_root = runtime.state_dir / "s3"
    # The background sync (every 2 s) would race the explicit ones counted below on a slow
    # machine: stop it; stopping the runtime still runs the final sync.
    assert runtime.aws.mirror is not None
    runtime.aws.mirror.stop()
    s3.create_bucket(Bucket="extra-bucket-1")
    s3.create_bucket(Bucket="empty-bucket-1")
    objects = {
        (UPLOADS_BUCKET, "docs/a.txt"): b"alpha",
        (UPLOADS_BUCKET, "docs/keep.txt"): b"kept",
        (UPLOADS_BUCKET, "../../escape.txt"): b"escape attempt",
        (UPLOADS_BUCKET, "x/../../../../up.txt"): b"escape attempt 2",
        (UPLOADS_BUCKET, "folder"): b"a file named like a folder",
        (UPLOADS_BUCKET, "folder/child.txt"): b"child",
        (PAYLOADS_BUCKET, "runs/r1/output.json"): b'{"ok": true}',
        ("extra-bucket-1", "notes.md"): b"# notes",
    }
    for (bucket, key), body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/x-test",
                      Metadata={"tenant": "t1"})

    written, _ = runtime.aws.sync_s3()
    assert written >= len(objects)
    assert (mirror_root / UPLOADS_BUCKET / "docs" / "a.txt").read_bytes() == b"alpha"
    assert (mirror_root / PAYLOADS_BUCKET / "runs" / "r1" / "output.json").read_bytes() == b'{"ok": true}'
    # Keys with "../" stay inside the mirror: nothing lands next to or above it.
    base = runtime.state_dir.parent
    for name in ("escape.txt", "up.txt"):
        for found in base.rglob(name):
            assert found.resolve().is_relative_to(mirror_root.resolve()), found
    assert not (runtime.state_dir / "escape.txt").exists()
    assert not (base / "up.txt").exists()
    assert runtime.aws.sync_s3() == (0, 0)  # unchanged ETags: nothing rewritten

    s3.delete_object(Bucket=UPLOADS_BUCKET, Key="docs/a.txt")
    del objects[(UPLOADS_BUCKET, "docs/a.txt")]
    assert runtime.aws.sync_s3() == (0, 1)
    assert not (mirror_root / UPLOADS_BUCKET / "docs" / "a.txt").exists()
    assert (mirror_root / UPLOADS_BUCKET / "docs" / "keep.txt").exists()
    sidecars = (mirror_root / ".meta" / UPLOADS_BUCKET).glob("*.json")
    mirrored = {json.loads(sidecar.read_text())["key"] for sidecar in sidecars}
    assert {key for bucket, key in objects if bucket == UPLOADS_BUCKET} <= mirrored
    assert "docs/a.txt" not in mirrored

    # An object put just before stopping is caught by the final sync.
    s3.put_object(Bucket=PAYLOADS_BUCKET, Key="late.txt", Body=b"late")
    objects[(PAYLOADS_BUCKET, "late.txt")] = b"late"

    runtime.aws.stop()
    fresh = LocalAws(runtime.state_dir, runtime.invoker)
    runtime.aws = fresh  # the module fixture stops whichever instance is current
    fresh.start()
    s3 = client("s3")
    for (bucket, key), body in objects.items():
        restored = s3.get_object(Bucket=bucket, Key=key)
        assert restored["Body"].read() == body, key
        if key != "late.txt":
            assert restored["ContentType"] == "text/x-test"
            assert restored["Metadata"] == {"tenant": "t1"}
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {"extra-bucket-1", "empty-bucket-1"} <= buckets
    with pytest.raises(ClientError):
        s3.head_object(Bucket=UPLOADS_BUCKET, Key="docs/a.txt")


def test_restore_reads_the_disk_not_leftover_server_state(runtime: Runtime) -> None:
    s3 = client("s3")
    s3.put_object(Bucket=UPLOADS_BUCKET, Key="forgotten.txt", Body=b"gone after restart")
    s3.put_object(Bucket=UPLOADS_BUCKET, Key="remembered.txt", Body=b"still here")
    runtime.aws.sync_s3()
    runtime.aws.stop()
    # Take one object out of the mirror while the runtime is down: a restart that kept
    # moto's memory would still serve it.
    for sidecar in (runtime.state_dir / "s3" / ".meta" / UPLOADS_BUCKET).glob("*.json"):
        if json.loads(sidecar.read_text())["key"] == "forgotten.txt":
            sidecar.unlink()
    fresh = LocalAws(runtime.state_dir, runtime.invoker)
    runtime.aws = fresh
    fresh.start()
    s3 = client("s3")
    assert s3.get_object(Bucket=UPLOADS_BUCKET, Key="remembered.txt")["Body"].read() == b"still here"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=UPLOADS_BUCKET, Key="forgotten.txt")
