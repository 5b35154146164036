"""Ports to the AWS services ingestion uses, with boto3 adapters: document files in S3, the
ingest queue (SQS) and state machine executions. Tests hand in the same adapters pointed at
moto, or their own fakes of these ports."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol

from shared.knowledge.errors import DocumentTooLarge

logger = logging.getLogger(__name__)

ClientFactory = Callable[[str], Any]


def document_prefix(tenant_id: object, knowledge_base_id: object) -> str:
    """Every object of a knowledge base lives under this prefix (deleted with it)."""
    return f"tenants/{tenant_id}/knowledge-bases/{knowledge_base_id}/"


def document_key(tenant_id: object, knowledge_base_id: object, document_id: object) -> str:
    # The key names the tenant and document: an S3 event alone says whose document it is.
    return f"{document_prefix(tenant_id, knowledge_base_id)}documents/{document_id}/source"


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    fields: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True)
class Downloaded:
    size: int
    sha256: str


class DocumentFiles(Protocol):
    def presigned_upload(self, key: str, content_type: str, size: int, expires_s: int) -> PresignedUpload: ...

    def put_text(self, key: str, text: str) -> None: ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    def download(self, key: str, dest: IO[bytes], max_bytes: int) -> Downloaded: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str, limit: int) -> int:
        """Delete up to ``limit`` objects under ``prefix``; the count deleted (0: none left)."""
        ...


class IngestQueue(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...


class Executions(Protocol):
    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any], *, restart: bool = False) -> None:
        """Start an execution; one already started under ``name`` counts as started. With
        ``restart``, one that has ended (failed, stopped) is started again under a new name."""
        ...


class S3DocumentFiles:
    def __init__(self, client: ClientFactory, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def presigned_upload(self, key: str, content_type: str, size: int, expires_s: int) -> PresignedUpload:
        s3 = self._client("s3")
        # The form may carry exactly this content type and at most the declared size.
        post = s3.generate_presigned_post(
            self._bucket, key, Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, size]],
            ExpiresIn=expires_s)
        return PresignedUpload(post["url"], dict(post["fields"]), datetime.now(UTC) + timedelta(seconds=expires_s))

    def put_text(self, key: str, text: str) -> None:
        self._client("s3").put_object(Bucket=self._bucket, Key=key, Body=text.encode(),
                                      ContentType="text/plain; charset=utf-8")

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._client("s3").put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)

    def download(self, key: str, dest: IO[bytes], max_bytes: int) -> Downloaded:
        """Stream the object into ``dest`` (a temporary file), hashing as it goes: the
        document is never held whole in memory."""
        body = self._client("s3").get_object(Bucket=self._bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in body.iter_chunks(chunk_size=1024 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise DocumentTooLarge(f"The file is larger than the {max_bytes} bytes allowed",
                                           details={"max_bytes": max_bytes})
                digest.update(chunk)
                dest.write(chunk)
        finally:
            body.close()
        dest.flush()
        return Downloaded(size, digest.hexdigest())

    def delete(self, key: str) -> None:
        self._client("s3").delete_object(Bucket=self._bucket, Key=key)

    def exists(self, key: str) -> bool:
        # A listing, not HeadObject: for a missing key HeadObject answers 404 only to a caller
        # holding s3:ListBucket in the request's own context, and the grant is ListBucket
        # conditioned on s3:prefix (tenants/*), a key HeadObject does not carry: a missing file
        # would be a 403, indistinguishable from a real denial. Listing with Prefix=key is
        # exactly what that grant admits, and a 403 here stays an error. The key itself sorts
        # first among the keys it prefixes, so one result answers.
        listed = self._client("s3").list_objects_v2(Bucket=self._bucket, Prefix=key, MaxKeys=1)
        return any(item["Key"] == key for item in listed.get("Contents", []))

    def delete_prefix(self, prefix: str, limit: int) -> int:
        s3 = self._client("s3")
        listed = s3.list_objects_v2(Bucket=self._bucket, Prefix=prefix, MaxKeys=min(limit, 1000))
        keys = [{"Key": item["Key"]} for item in listed.get("Contents", [])]
        if not keys:
            return 0
        result = s3.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})
        errors = result.get("Errors") or []
        if errors:
            # Raised, not logged: the state machine retries the batch.
            raise RuntimeError(f"S3 refused to delete {len(errors)} objects under {prefix}: {errors[0].get('Code')}")
        return len(keys)


class SqsIngestQueue:
    def __init__(self, client: ClientFactory, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, message: dict[str, Any]) -> None:
        self._client("sqs").send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(message))


class StepFunctionsExecutions:
    def __init__(self, client: ClientFactory) -> None:
        self._client = client

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any], *, restart: bool = False) -> None:
        sfn = self._client("stepfunctions")
        try:
            sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
            return
        except sfn.exceptions.ExecutionAlreadyExists:
            # A redelivered message asked again: the execution it wants exists already.
            logger.info("execution already started", extra={"execution_name": name})
        if not restart:
            return
        execution_arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
        if status != "RUNNING":
            # Names are never reused, even after an execution ends: a suffix makes a new one.
            sfn.start_execution(stateMachineArn=state_machine_arn, name=f"{name}-{int(time.time())}",
                                input=json.dumps(payload))
