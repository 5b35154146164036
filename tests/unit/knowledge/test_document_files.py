"""S3DocumentFiles.exists: the upload sweeper's question "did the file land?" must be answerable
with the grant the sweeper has (s3:ListBucket conditioned on s3:prefix tenants/*, plus GetObject
under tenants/), where HeadObject of a missing key answers 403, not 404."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from shared.knowledge.storage import S3DocumentFiles, document_key

BUCKET = "stratus-uploads-test"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _key() -> str:
    return document_key(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())


def test_exists_is_true_for_an_uploaded_file_and_false_for_a_missing_one(s3: Any) -> None:
    files = S3DocumentFiles(lambda _: s3, BUCKET)
    present, missing = _key(), _key()
    s3.put_object(Bucket=BUCKET, Key=present, Body=b"hello")
    assert files.exists(present) is True
    assert files.exists(missing) is False


def test_a_longer_key_sharing_the_prefix_is_not_the_file(s3: Any) -> None:
    files = S3DocumentFiles(lambda _: s3, BUCKET)
    key = _key()
    s3.put_object(Bucket=BUCKET, Key=key + ".partial", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=key + "/child", Body=b"x")
    assert files.exists(key) is False
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert files.exists(key) is True


def test_exists_asks_a_listing_under_the_key_which_the_prefix_scoped_grant_admits() -> None:
    # What S3 answers a role without unconditioned ListBucket: HeadObject of a missing key is
    # 403. exists() must not depend on it: it lists with Prefix=<key> (s3:prefix = the key,
    # inside tenants/*), and never calls HeadObject (a stubbed call it did not expect fails).
    client = boto3.client("s3", region_name="us-east-1")
    key = _key()
    assert key.startswith("tenants/")
    with Stubber(client) as stub:
        stub.add_response("list_objects_v2", {"KeyCount": 0, "IsTruncated": False},
                          {"Bucket": BUCKET, "Prefix": key, "MaxKeys": 1})
        assert S3DocumentFiles(lambda _: client, BUCKET).exists(key) is False
        stub.assert_no_pending_responses()


def test_a_denied_listing_is_an_error_not_a_missing_file() -> None:
    # A real denial (a broken grant) must not fail every pending document as "never uploaded".
    client = boto3.client("s3", region_name="us-east-1")
    key = _key()
    with Stubber(client) as stub:
        stub.add_client_error("list_objects_v2", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(ClientError):
            S3DocumentFiles(lambda _: client, BUCKET).exists(key)
