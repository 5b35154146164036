"""What every Coze route shares, as ``cozepy`` reads it (``cozepy/request.py``,
``cozepy/model.py``): the success envelope ``{"code": 0, "msg": "", "data": ..., "detail":
{"logid"}}``, the list shapes its pagers read, ids and times, and the errors a facade raises with
a Coze code of its own.

- **Envelope.** :class:`CozeEnvelope` is the model a handler declares (``Response[CozeEnvelope[X]]``);
  the dialect builds it (``app.ok(x)``). A list answer is an envelope whose ``data`` holds the
  page: :func:`number_page` (``page_num``/``page_size`` pagers: ``NumberPaged`` reads ``has_more``
  or ``total``); the message list's top-level ``first_id``/``last_id``/``has_more`` is
  :class:`CozeIdPageEnvelope`.
- **Ids** are Stratus's UUIDs as strings (cozepy types every id as ``str``); an id that is not one
  answers the resource's not-found (:func:`parse_id`), as an unknown id does.
- **Times** are Unix seconds (:func:`timestamp`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from shared.db.paging import Page
from shared.errors import StratusError

T = TypeVar("T")

# Coze's error codes (https://www.coze.cn/open/docs/developer_guides/coze_error_codes) that the
# facade answers; ``shared.facades.coze.dialect`` maps Stratus's errors onto them.
INVALID_PARAM = 4000
INVALID_CHAT = 4001
INVALID_CONVERSATION = 4002
INVALID_MESSAGE = 4005
INVALID_BOT = 4006
STREAM_REQUIRES_HISTORY = 4007
SYSTEM_LIMIT = 4009
PROMPT_TOO_LONG = 4010
INSUFFICIENT_BALANCE = 4011
INVALID_MODEL = 4012
MODEL_ERROR = 4013
BOT_NOT_PUBLISHED = 4015
CONVERSATION_BUSY = 4016
AUTH_INVALID = 4100
PERMISSION_DENIED = 4101
CHAT_NOT_CANCELLABLE = 4104
NOT_FOUND = 4200
INTERNAL = 5000


class CozeDetail(BaseModel):
    logid: str = Field(description="The request's id (also the X-Tt-Logid header)")


class CozeEnvelope(BaseModel, Generic[T]):
    """A Coze success answer: ``code`` 0, empty ``msg``, the answer in ``data``."""

    code: int = 0
    msg: str = ""
    data: T
    detail: CozeDetail


class CozeIdPageEnvelope(BaseModel, Generic[T]):
    """A list paged by ids (``/v1/conversation/message/list``): the items in ``data``, and the
    ids to page from at the top level, where ``cozepy``'s ``LastIDPaged`` reads them."""

    code: int = 0
    msg: str = ""
    data: list[T]
    first_id: str
    last_id: str
    has_more: bool
    detail: CozeDetail


class CozeErrorBody(BaseModel):
    """Coze's error body (also the data of a stream's ``error`` event, without ``detail``)."""

    code: int = Field(description="Coze's error code (4000 invalid parameter, 4100 invalid token, 4200 not found…)")
    msg: str
    detail: CozeDetail | None = None


class CozeError(StratusError):
    """An error a Coze route raises with Coze's own code (one the mapping of Stratus's codes
    cannot know: 4007, 4104…), with its HTTP status."""

    def __init__(self, coze_code: int, message: str, *, status: int = 400, code: str = "coze_invalid_request",
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, details=details)
        self.coze_code = coze_code
        self.status = status


def envelope(data: Any, logid: str) -> dict[str, Any]:
    """The success body carrying ``data`` (already JSON-ready)."""
    return {"code": 0, "msg": "", "data": data, "detail": {"logid": logid}}


def dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [dump(item) for item in value]
    if isinstance(value, dict):
        return {key: dump(item) for key, item in value.items()}
    return value


def timestamp(value: datetime | None) -> int:
    """Unix seconds (0 for a time not reached)."""
    return int(value.timestamp()) if value is not None else 0


def coze_id(value: uuid.UUID | None) -> str:
    return str(value) if value is not None else ""


def parse_id(value: str | None, not_found: StratusError) -> uuid.UUID:
    """A Coze id as Stratus's: an id that is no UUID is as unknown as a UUID nobody has."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise not_found from None


def number_page(page: Page[Any], key: str = "items", *, total: bool = True) -> dict[str, Any]:
    """``data`` of a list paged by ``page_num``/``page_size``: the items under ``key``,
    ``has_more`` and (``total``) the count of every item."""
    body: dict[str, Any] = {key: dump(page.items), "has_more": page.page * page.limit < page.total}
    if total:
        body["total"] = page.total
    return body
