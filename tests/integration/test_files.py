"""Files through the API and the service: real PostgreSQL, S3 through moto (in-process). What an
upload stores (the row, the object under tenants/<tenant>/files/), what it refuses and that a
refusal leaves nothing, tenancy, and the file reference workflows read."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from starlette.testclient import TestClient

from shared.auth.principal import Principal
from shared.aws.clients import reset_clients
from shared.config import reset_settings
from shared.db.database import get_database
from shared.files.errors import FileNotFound
from shared.files.service import MAX_FILE_BYTES, FilesService
from shared.files.storage import S3FileObjects
from shared.files.wiring import files_service
from tests.integration.conftest import bearer

BUCKET = "stratus-files-test"
Sql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def s3(app_env: None) -> Iterator[Any]:
    saved = {k: os.environ.get(k) for k in ("UPLOADS_BUCKET", "AWS_ENDPOINT_URL")}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        os.environ["UPLOADS_BUCKET"] = BUCKET
        reset_settings()
        reset_clients()
        yield client
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    reset_settings()
    reset_clients()


def objects(s3: Any, prefix: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def upload(client: TestClient, token: str, name: str, data: bytes, content_type: str | None = None) -> Any:
    part = (name, data, content_type) if content_type else (name, data)
    return client.post("/api/v1/files", files={"file": part}, headers=bearer(token))


def test_upload_stores_the_bytes_and_the_record(client: TestClient, s3: Any, new_tenant: Callable[..., Any],
                                                admin_sql: Sql) -> None:
    tenant = new_tenant()
    data = b"# Notes\n\nStratus stores files under the tenant's prefix.\n"
    response = upload(client, tenant["owner_token"], "../../etc/notes.md", data)
    assert response.status_code == 201, response.text
    file = response.json()["data"]
    # The path is dropped from the name; the type is the one the client's part declares
    # (httpx guesses it from the name).
    assert file["name"] == "notes.md"
    assert file["content_type"] == "text/markdown"
    assert file["size"] == len(data)
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    key = f"tenants/{tenant['tenant']['id']}/files/{file['id']}/content"
    assert admin_sql("SELECT s3_key, tenant_id::text FROM files WHERE id = %s", (file["id"],)) == [
        (key, tenant["tenant"]["id"])]
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data

    got = client.get(f"/api/v1/files/{file['id']}", headers=bearer(tenant["owner_token"]))
    assert got.status_code == 200 and got.json()["data"] == file


def test_declared_type_wins_and_unnamed_binary_is_refused(client: TestClient, s3: Any,
                                                          new_tenant: Callable[..., Any], admin_sql: Sql) -> None:
    tenant = new_tenant()
    token, prefix = tenant["owner_token"], f"tenants/{tenant['tenant']['id']}/files/"
    pdf = upload(client, token, "scan", b"%PDF-1.4 minimal", "application/pdf")
    assert pdf.status_code == 201 and pdf.json()["data"]["content_type"] == "application/pdf"
    before = objects(s3, prefix)
    # Refusals change nothing: no row, no object.
    refused = [
        (upload(client, token, "tool.exe", b"MZ\x90\x00", "application/octet-stream"), 415, "file_type_not_allowed"),
        (upload(client, token, "blob", b"\x00\x01"), 415, "file_type_not_allowed"),
        (upload(client, token, "empty.txt", b""), 422, "file_empty"),
        (upload(client, token, "big.txt", b"a" * (MAX_FILE_BYTES + 1)), 413, "file_too_large"),
        (client.post("/api/v1/files", json={"file": "x"}, headers=bearer(token)), 415, "biz_unsupported_media_type"),
        (client.post("/api/v1/files", files={"other": ("a.txt", b"hi")}, headers=bearer(token)), 422,
         "biz_validation_failed"),
        (client.post("/api/v1/files", content=b"a" * (MAX_FILE_BYTES + 100_000),
                     headers={**bearer(token), "content-type": "multipart/form-data; boundary=x"}), 413,
         "biz_payload_too_large"),
    ]
    for response, status, code in refused:
        assert response.status_code == status, response.text
        assert response.json()["code"] == code, response.text
    assert objects(s3, prefix) == before
    assert admin_sql("SELECT count(*) FROM files WHERE tenant_id = %s", (tenant["tenant"]["id"],)) == [(1,)]
    missing = client.post("/api/v1/files", files={"other": ("a.txt", b"hi")}, headers=bearer(token)).json()
    assert missing["details"]["fields"][0]["field"].endswith("file")


def test_another_tenants_file_is_not_found(client: TestClient, s3: Any, new_tenant: Callable[..., Any]) -> None:
    owner, other = new_tenant(), new_tenant()
    file = upload(client, owner["owner_token"], "a.txt", b"secret").json()["data"]
    for path in (f"/api/v1/files/{file['id']}", f"/api/v1/files/{uuid.uuid4()}", "/api/v1/files/not-an-id"):
        response = client.get(path, headers=bearer(other["owner_token"]))
        assert response.status_code == 404 and response.json()["code"] == "file_not_found", response.text
    assert client.get(f"/api/v1/files/{file['id']}").status_code == 401


def test_service_opens_and_resolves_references_for_its_tenant_only(s3: Any, new_tenant: Callable[..., Any]) -> None:
    tenant, other = new_tenant(), new_tenant()
    principal = Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=uuid.UUID(tenant["tenant"]["id"]),
                          role="owner")
    service = files_service()
    data = bytes(range(256)) * 10
    file = service.upload(principal, "chart.png", "image/png", data)
    opened = service.open(principal, file.id)
    assert opened.file == file and b"".join(opened.chunks) == data
    reference = service.reference(principal.tenant, file.id)
    assert reference == {"file_id": str(file.id), "s3_key": f"tenants/{principal.tenant}/files/{file.id}/content",
                         "filename": "chart.png", "mime_type": "image/png", "size": len(data)}
    with pytest.raises(FileNotFound):
        service.reference(uuid.UUID(other["tenant"]["id"]), file.id)


def test_a_failed_record_takes_the_object_back(s3: Any, new_tenant: Callable[..., Any]) -> None:
    tenant = new_tenant()
    # A principal whose tenant row does not exist: the insert fails on its foreign key.
    ghost = Principal(kind="api_key", token_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="owner")
    service = FilesService(get_database(), lambda: S3FileObjects(boto3.client, BUCKET))
    with pytest.raises(Exception):  # noqa: B017 - the database's own error
        service.upload(ghost, "a.txt", "text/plain", b"hello")
    assert objects(s3, f"tenants/{ghost.tenant}/") == []
    assert tenant  # the real tenant is untouched
