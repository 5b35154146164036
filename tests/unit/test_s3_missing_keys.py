"""A file read under the tenant's prefix by a role that may read but not list the bucket: S3
answers a missing key 403 AccessDenied, not 404. Both readers (a workflow's file input, an
uploaded file) must call that "not found", not an internal failure; other errors stay errors."""

from __future__ import annotations

import io
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from shared.files.storage import S3FileObjects
from shared.workflows.engine.files import S3FileStore

BUCKET = "stratus-uploads-test"
KEY = "tenants/00000000-0000-0000-0000-000000000001/files/x/content"


def _client() -> Any:
    return boto3.client("s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


@pytest.mark.parametrize("code,status", [("AccessDenied", 403), ("NoSuchKey", 404)])
def test_a_missing_key_is_not_found_for_both_readers(code: str, status: int) -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        with pytest.raises(FileNotFoundError):
            S3FileStore(lambda _: client, BUCKET).download(KEY, io.BytesIO(), 1024)
        with pytest.raises(FileNotFoundError):
            S3FileObjects(lambda _: client, BUCKET).open(KEY)


def test_other_failures_stay_errors() -> None:
    from botocore.exceptions import ClientError

    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("get_object", service_error_code="SlowDown", http_status_code=503)
        stub.add_client_error("get_object", service_error_code="SlowDown", http_status_code=503)
        with pytest.raises(ClientError):
            S3FileStore(lambda _: client, BUCKET).download(KEY, io.BytesIO(), 1024)
        with pytest.raises(ClientError):
            S3FileObjects(lambda _: client, BUCKET).open(KEY)
