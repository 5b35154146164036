"""The bytes of files in the uploads bucket (S3; moto locally). Keys name the tenant and file:
``tenants/<tenant>/files/<file>/<name>``. The ingest notification covers ``tenants/``; it
ignores these keys (they are not documents)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

ClientFactory = Callable[[str], Any]


def file_key(tenant_id: object, file_id: object) -> str:
    # The name is not part of the key: it is any text the client sent.
    return f"tenants/{tenant_id}/files/{file_id}/content"


class FileObjects(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def open(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks (never held whole); FileNotFoundError when absent."""
        ...

    def delete(self, key: str) -> None: ...


class S3FileObjects:
    def __init__(self, client: ClientFactory, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._client("s3").put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)

    def open(self, key: str) -> Iterator[bytes]:
        s3 = self._client("s3")
        try:
            body = s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        except s3.exceptions.ClientError as exc:
            # Readers hold GetObject under tenants/ without ListBucket: S3 answers a missing key
            # 403 AccessDenied then, 404 NoSuchKey only to a role that may list.
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "AccessDenied"):
                raise FileNotFoundError(key) from None
            raise
        return _chunks(body)

    def delete(self, key: str) -> None:
        self._client("s3").delete_object(Bucket=self._bucket, Key=key)


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size=1024 * 1024)
    finally:
        body.close()
