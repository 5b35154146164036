"""The file port of the document extractor: objects of the uploads bucket, read by key into a
spool file with a size cap. The node checks that a key lies under the run's tenant prefix
(``tenants/<tenant_id>/``) before it asks; the port only reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any, Protocol


class FileTooLarge(Exception):
    """The object is larger than the reader was allowed to read."""


class FileStore(Protocol):
    def download(self, key: str, dest: IO[bytes], max_bytes: int) -> int:
        """Write the object at ``key`` into ``dest``; its size. Raises FileNotFoundError when
        there is no such object, :class:`FileTooLarge` past ``max_bytes``."""
        ...


class S3FileStore:
    def __init__(self, client: Callable[[str], Any], bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def download(self, key: str, dest: IO[bytes], max_bytes: int) -> int:
        s3 = self._client("s3")
        try:
            response = s3.get_object(Bucket=self._bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            # AccessDenied too: the node functions may read the tenant's prefix but not list the
            # bucket, and S3 then answers 403 for a key that does not exist (not 404).
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "AccessDenied"):
                raise FileNotFoundError(key) from None
            raise
        if int(response.get("ContentLength") or 0) > max_bytes:
            response["Body"].close()
            raise FileTooLarge(key)
        body = response["Body"]
        size = 0
        try:
            for chunk in body.iter_chunks(chunk_size=1024 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLarge(key)
                dest.write(chunk)
        finally:
            body.close()
        dest.flush()
        return size
