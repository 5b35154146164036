"""Coze's variables ("memory") over agent variables (docs/variables.md): ``GET /v1/variables``
and ``PUT /v1/variables`` as ``cozepy.variables`` sends them. ``bot_id`` is the agent,
``connector_uid`` the end user (``user`` in Stratus), ``keywords`` the variables' names;
``connector_id`` (Coze's publishing channel) is accepted and ignored. Coze's apps (``app_id``)
have no Stratus counterpart: a request naming one without a bot is refused (4000)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, Field, StringConstraints

from shared.agents.config import MAX_INPUT_CHARS, MAX_USER_VARIABLES
from shared.facades.coze import wire
from shared.validation import RequestModel

if TYPE_CHECKING:
    from shared.agents.api import AgentVariablesOut
    from shared.auth.principal import Principal

Uid = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class CozeVariableValue(BaseModel):
    """``cozepy.variables.VariableValue``."""

    keyword: str
    value: str
    create_time: int = Field(description="Unix seconds the value was first set (0: never set, the default)")
    update_time: int = Field(description="Unix seconds the value was last set (0: never set, the default)")


class CozeVariables(BaseModel):
    items: list[CozeVariableValue]


class CozeVariableUpdate(RequestModel):
    keyword: str = Field(min_length=1, max_length=64)
    value: str = Field(max_length=MAX_INPUT_CHARS)


class UpdateCozeVariables(RequestModel):
    bot_id: str | None = Field(default=None, max_length=100, description="The agent's id")
    app_id: str | None = Field(default=None, max_length=100, description="Not supported: give bot_id")
    connector_id: str | None = Field(default=None, max_length=100, description="Accepted and ignored")
    connector_uid: Uid = Field(description="The end user")
    data: list[CozeVariableUpdate] = Field(min_length=1, max_length=MAX_USER_VARIABLES)


class CozeEmpty(BaseModel):
    """``cozepy.variables.UpdateVariableResp``: nothing."""


def bot(bot_id: str | None, app_id: str | None) -> str:
    """The agent a request names (an unknown or malformed id is the agent's not-found, 4006)."""
    if not bot_id:
        if app_id:
            raise wire.CozeError(wire.INVALID_PARAM, "Coze apps (app_id) are not supported here: name the bot "
                                                     "(bot_id), an agent of Stratus", code="coze_app_unsupported")
        raise wire.CozeError(wire.INVALID_PARAM, "bot_id is required", code="coze_bot_id_missing")
    return bot_id


def items(out: AgentVariablesOut) -> CozeVariables:
    return CozeVariables(items=[CozeVariableValue(keyword=v.name, value=v.value, create_time=wire.timestamp(
        v.created_at), update_time=wire.timestamp(v.updated_at)) for v in out.variables])


def retrieve(principal: Principal, bot_id: str | None, app_id: str | None, user: str,
             keywords: str | None) -> CozeVariables:
    from shared.agents.paths import agent_ref
    from shared.agents.wiring import agent_variables

    names = [name.strip() for name in (keywords or "").split(",") if name.strip()]
    return items(agent_variables().get_values(principal, agent_ref(bot(bot_id, app_id)), user, names or None))


def update(principal: Principal, body: UpdateCozeVariables) -> CozeEmpty:
    from shared.agents.paths import agent_ref
    from shared.agents.wiring import agent_variables

    keywords = [item.keyword for item in body.data]
    if len(set(keywords)) != len(keywords):
        raise wire.CozeError(wire.INVALID_PARAM, "data names a keyword twice", code="coze_variable_repeated")
    values: dict[str, str | None] = {item.keyword: item.value for item in body.data}
    agent_variables().set_values(principal, agent_ref(bot(body.bot_id, body.app_id)), body.connector_uid, values,
                                 field="data")
    return CozeEmpty()
