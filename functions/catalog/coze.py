"""Coze's OpenAPI over Stratus (docs/coze-api.md, docs/adr/0043-coze-facade.md): what the official
``cozepy`` SDK calls with ``base_url=<stratus>/coze``. JSON calls are HTTP API routes answering in
the ``coze`` dialect; what streams (``/coze/v3/chat``) is served by the streaming function that
already serves the underlying service."""

from __future__ import annotations

from shared.catalog import DATABASE, REDIS, Access, Facade, Function, Http

DIALECT = "coze"
FACADES = (Facade("coze", "/coze", DIALECT, "/coze",
                  "Coze OpenAPI: a bot is an agent; chats, conversations and messages are Stratus's"),)
TAG = "coze"


def coze_http(name: str, module: str, method: str, path: str, summary: str, *, permission: str = "agent:run",
              access: tuple[Access, ...] = (DATABASE, REDIS), domain: str = "chat") -> Function:
    """A Coze JSON route: an HTTP API function answering in Coze's dialect."""
    return Function(name, f"functions.coze.{module}", domain,
                    Http(method, path, permission=permission, tag=TAG, dialect=DIALECT, summary=summary),
                    access=access)


FUNCTIONS: tuple[Function, ...] = (
    coze_http("coze-users-me", "users_me", "GET", "/coze/v1/users/me",
              "Coze: the user the token belongs to", domain="platform"),
)
