"""``GET /v1/users/me``: the member the token belongs to, as Coze's ``User``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from shared.auth.principal import Principal


class CozeUser(BaseModel):
    """``cozepy.users.User``: ``user_id`` the member's user id, ``user_name`` their email,
    ``nick_name`` their name (the email when they gave none); Stratus keeps no avatar."""

    user_id: str
    user_name: str
    nick_name: str
    avatar_url: str


def me(principal: Principal) -> CozeUser:
    from shared.tenancy.service import tenancy_service

    member = tenancy_service().current_member(principal)
    return CozeUser(user_id=str(member.user_id), user_name=member.email, nick_name=member.name or member.email,
                    avatar_url="")
