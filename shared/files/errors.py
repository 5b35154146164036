"""File errors (mapped to each API's shape by its dialect)."""

from __future__ import annotations

from shared.errors import BadRequest, NotFound, PayloadTooLarge, StratusError, ValidationFailed


class FileNotFound(NotFound):
    code, default_message = "file_not_found", "File not found"


class FileTooLarge(PayloadTooLarge):
    code, default_message = "file_too_large", "The file is larger than allowed"


class FileTypeNotAllowed(StratusError):
    code, status, default_message = "file_type_not_allowed", 415, "This type of file cannot be uploaded"


class FileEmpty(ValidationFailed):
    code, default_message = "file_empty", "The file is empty"


class FileUploadMalformed(BadRequest):
    code, default_message = ("file_upload_malformed",
                             "Send the file as multipart/form-data with one part named \"file\"")
