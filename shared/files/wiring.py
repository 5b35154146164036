"""The container's files service: the database and the uploads bucket (boto3 built on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.files.service import FilesService
    from shared.files.storage import FileObjects


def _objects() -> FileObjects:
    from shared.aws.clients import client
    from shared.config import get_settings
    from shared.files.storage import S3FileObjects

    bucket = get_settings().uploads_bucket
    if not bucket:
        raise RuntimeError("UPLOADS_BUCKET is not set")
    return S3FileObjects(client, bucket)


def files_service() -> FilesService:
    from shared.db.database import get_database
    from shared.files.service import FilesService

    return FilesService(get_database(), _objects)
