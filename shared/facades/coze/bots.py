"""Coze's bots over Stratus's agents, as ``cozepy.bots`` sends and reads them: create and update a
bot (the agent's draft), publish it (the draft becomes the agent's next version), retrieve it
(published or draft) and list a space's bots (both of cozepy's list shapes). No second
implementation: every call is one of the agent service's (docs/adr/0050-coze-bots.md).

- **Space**: ``space_id`` / ``workspace_id`` are accepted; the tenant is the space. Its bots are
  the tenant's own agents (built-ins are reachable by their slug, not listed).
- **Fields** map onto the agent's configuration: ``prompt_info.prompt`` is the system prompt,
  ``onboarding_info`` the opening message and suggested questions, ``knowledge`` the knowledge
  bases (``search_strategy`` the retrieval mode; ``auto_call`` must match how the agent retrieves:
  a quick-answer agent on every turn, a smart-reasoning agent when the model asks), and
  ``model_info_config`` the model (``model_id`` is the name of one of the tenant's models),
  temperature, top_p, max_tokens and remembered turns (``context_round``).
- **Refused with 4000, never ignored**: what Stratus cannot honour — plugins and workflows bound
  through ``plugin_id_list``/``workflow_id_list`` (Stratus's tools are a smart-reasoning agent's,
  set through ``/api/v1/agents``), suggested replies, and the model settings Stratus does not pass
  to a model (``top_k``, penalties, ``parameters``, JSON answers, the anti-leak and current-time
  prompt additions). The icon (``icon_file_id``) is accepted, not kept (an agent's avatar is an
  https URL or an emoji), as a dataset's icon is.
- **Unpublish** is refused (4000): a Stratus agent's published version keeps answering until the
  agent is deleted; the message says so.
- A key bound to one agent sees and changes that agent alone (any other is Coze's 4006) and
  cannot create bots (4101)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationError

from shared.agents.config import MAX_INPUT_CHARS, AgentConfig
from shared.facades.coze import wire
from shared.knowledge.contract import RetrievalMode
from shared.validation import RequestModel

if TYPE_CHECKING:
    from shared.agents.api import AgentOut, AgentVersionOut
    from shared.agents.paths import AgentRef
    from shared.auth.principal import Principal

# Coze's bot modes (cozepy.bots.BotMode): a chatflow agent is Coze's single agent workflow mode.
SINGLE_AGENT, SINGLE_AGENT_WORKFLOW = 0, 2
# Coze's search strategies (cozepy.bots.BotKnowledge) and Stratus's retrieval modes.
_STRATEGIES: dict[int, RetrievalMode] = {0: "semantic", 1: "hybrid", 20: "full_text"}
_STRATEGY_OF: dict[str, int] = {mode: strategy for strategy, mode in _STRATEGIES.items()}
# cozepy.bots.PublishStatus; Coze lists the published bots' online versions by default.
PublishStatus = Literal["all", "published_online", "published_draft", "unpublished_draft"]
_PUBLISHED_FILTER: dict[str, bool | None] = {"all": None, "published_online": True, "published_draft": True,
                                             "unpublished_draft": False}
# Where an agent configuration's fields come from in Coze's body (to name a refused value).
_CONFIG_FIELDS = {"system_prompt": "prompt_info.prompt", "opening_message": "onboarding_info.prologue",
                  "suggested_questions": "onboarding_info.suggested_questions", "knowledge": "knowledge",
                  "model": "model_info_config", "memory": "model_info_config.context_round"}
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


def _invalid(message: str, code: str) -> wire.CozeError:
    return wire.CozeError(wire.INVALID_PARAM, message, code=code)


# -- requests (what cozepy sends) -------------------------------------------------------------------
class CozePromptInfo(RequestModel):
    prompt: str = Field(max_length=20_000, description="The system prompt")


class CozeOnboardingInfo(RequestModel):
    prologue: str | None = Field(default=None, max_length=2000, description="The opening message")
    suggested_questions: list[Question] | None = Field(default=None, max_length=10)


class CozeKnowledge(RequestModel):
    dataset_ids: list[Id] = Field(default_factory=list, max_length=10, description="Knowledge base ids")
    auto_call: bool | None = Field(default=None, description=(
        "true: retrieve on every turn (a quick-answer agent); false: when the model asks (a smart-reasoning "
        "agent). Must match the agent's mode"))
    search_strategy: int | None = Field(default=None, ge=0, le=20,
                                        description="0 semantic, 1 hybrid, 20 full-text")


class CozeModelInfoConfig(RequestModel):
    model_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="The name of one of the tenant's chat models (GET /api/v1/models?capability=chat)")
    model_name: str | None = Field(default=None, max_length=200, description="Accepted: the name is model_id")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    context_round: int | None = Field(default=None, ge=0, le=50, description="Past turns the model remembers")
    response_format: str | None = Field(default=None, max_length=20,
                                        description="text or markdown (answers are text); json is refused")
    cache_type: str | None = Field(default=None, max_length=20, description="Accepted: no effect")
    top_k: int | None = Field(default=None, ge=0, le=1000, description="Refused: not passed to models")
    presence_penalty: float | None = Field(default=None, ge=-2, le=2, description="Refused unless 0")
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2, description="Refused unless 0")
    parameters: dict[Annotated[str, StringConstraints(max_length=100)],
                     Annotated[str, StringConstraints(max_length=1000)]] | None = Field(
        default=None, max_length=20, description="Refused unless empty")
    sp_anti_leak: bool | None = Field(default=None, description="Refused when true")
    sp_current_time: bool | None = Field(default=None, description="Refused when true")


class CozeSuggestReplyInfo(RequestModel):
    reply_mode: str = Field(max_length=20, description="disable only: Stratus suggests no replies")
    customized_prompt: str | None = Field(default=None, max_length=MAX_INPUT_CHARS)


class CozePluginId(RequestModel):
    plugin_id: Id
    api_id: Id


class CozePluginIdList(RequestModel):
    id_list: list[CozePluginId] | None = Field(default=None, max_length=100)


class CozeWorkflowId(RequestModel):
    id: Id


class CozeWorkflowIdList(RequestModel):
    ids: list[CozeWorkflowId] | None = Field(default=None, max_length=100)


class _BotFields(RequestModel):
    description: str | None = Field(default=None, max_length=2000)
    icon_file_id: str | None = Field(default=None, max_length=100, description="The icon: accepted, not kept")
    prompt_info: CozePromptInfo | None = None
    onboarding_info: CozeOnboardingInfo | None = None
    knowledge: CozeKnowledge | None = None
    suggest_reply_info: CozeSuggestReplyInfo | None = None
    model_info_config: CozeModelInfoConfig | None = None
    plugin_id_list: CozePluginIdList | None = Field(default=None, description="Refused unless empty")
    workflow_id_list: CozeWorkflowIdList | None = Field(default=None, description="Refused unless empty")


class CreateCozeBot(_BotFields):
    space_id: str = Field(max_length=100, description="Accepted: the tenant is the space")
    name: Name


class UpdateCozeBot(_BotFields):
    """A partial update: what is absent stays as it is."""

    bot_id: Id
    name: Name | None = None


class PublishCozeBot(RequestModel):
    bot_id: Id
    connector_ids: list[Annotated[str, StringConstraints(max_length=100)]] | None = Field(
        default=None, max_length=20, description="Accepted, ignored: Stratus has no publishing channels")


class UnpublishCozeBot(RequestModel):
    bot_id: str | None = Field(default=None, max_length=100)
    connector_id: str | None = Field(default=None, max_length=100)
    unpublish_reason: str | None = Field(default=None, max_length=1024)


# -- answers (cozepy.bots' models) ------------------------------------------------------------------
class CozeBotCreated(BaseModel):
    bot_id: str


class CozeBotPublished(BaseModel):
    bot_id: str
    version: str = Field(description="The published version's number")


class CozeEmpty(BaseModel):
    """cozepy's ``UpdateBotResp``: nothing."""


class CozePromptInfoOut(BaseModel):
    prompt: str


class CozeOnboardingInfoOut(BaseModel):
    prologue: str
    suggested_questions: list[str]


class CozeKnowledgeOut(BaseModel):
    dataset_ids: list[str]
    auto_call: bool = Field(description="true: retrieved on every turn; false: when the model asks")
    search_strategy: int = Field(description="0 semantic, 1 hybrid, 20 full-text")


class CozeModelInfoOut(BaseModel):
    model_id: str = Field(description="The model's name; empty: the tenant's default chat model")
    model_name: str
    temperature: float
    top_p: float
    max_tokens: int | None = Field(description="None: the model's own limit")
    context_round: int


class CozeSuggestReplyOut(BaseModel):
    reply_mode: str
    customized_prompt: str


class CozeBotVariable(BaseModel):
    """``cozepy.bots.BotVariable``: an agent variable (docs/variables.md)."""

    keyword: str
    default_value: str
    variable_type: str
    channel: str
    description: str
    enable: bool
    prompt_enable: bool


class CozeBot(BaseModel):
    """``cozepy.bots.Bot``: the agent's published version, or its draft."""

    bot_id: str
    name: str
    description: str
    icon_url: str = Field(description="The agent's avatar when it is an https URL, else empty")
    create_time: int
    update_time: int = Field(description="When the draft was last changed, or the version published")
    version: str = Field(description="The published version's number (a draft: the version it follows; 0 "
                                     "when never published)")
    bot_mode: int = Field(description="0 single agent; 2 single agent workflow (a chatflow agent)")
    prompt_info: CozePromptInfoOut
    onboarding_info: CozeOnboardingInfoOut
    knowledge: CozeKnowledgeOut
    model_info: CozeModelInfoOut
    suggest_reply_info: CozeSuggestReplyOut
    variables: list[CozeBotVariable]
    plugin_info_list: list[dict[str, Any]] = Field(description="Always empty (Stratus's tools are not plugins)")
    workflow_info_list: list[dict[str, Any]] = Field(description="Always empty")


class CozeSimpleBot(BaseModel):
    """``cozepy.bots.SimpleBot``."""

    id: str
    name: str
    description: str
    icon_url: str
    is_published: bool
    updated_at: int
    published_at: int | None
    owner_user_id: str = Field(description="Empty: agents belong to the tenant")


class CozeBotList(BaseModel):
    items: list[CozeSimpleBot]
    total: int


class CozeSpaceBot(BaseModel):
    """An item of the older ``/v1/space/published_bots_list``."""

    bot_id: str
    bot_name: str
    description: str
    icon_url: str
    publish_time: str = Field(description="Unix seconds, as a string")


class CozeSpaceBotList(BaseModel):
    space_bots: list[CozeSpaceBot]
    total: int


# -- translation ------------------------------------------------------------------------------------
def icon_url(avatar: str | None) -> str:
    return avatar if avatar and avatar.lower().startswith("https://") else ""


def coze_bot(agent: AgentOut, version: AgentVersionOut | None) -> CozeBot:
    """The bot as Coze shows it: ``version`` (the published one) when given, else the draft."""
    source: AgentOut | AgentVersionOut = version or agent
    config = source.config
    return CozeBot(
        bot_id=str(agent.id), name=source.name, description=source.description, icon_url=icon_url(source.avatar),
        create_time=wire.timestamp(agent.created_at),
        update_time=wire.timestamp(version.created_at if version else agent.updated_at),
        version=str(version.number if version else agent.published_version or 0),
        bot_mode=SINGLE_AGENT_WORKFLOW if config.mode == "chatflow" else SINGLE_AGENT,
        prompt_info=CozePromptInfoOut(prompt=config.system_prompt),
        onboarding_info=CozeOnboardingInfoOut(prologue=config.opening_message,
                                              suggested_questions=list(config.suggested_questions)),
        knowledge=CozeKnowledgeOut(dataset_ids=[str(i) for i in config.knowledge.knowledge_base_ids],
                                   auto_call=config.mode != "smart-reasoning",
                                   search_strategy=_STRATEGY_OF[config.knowledge.retrieval.mode]),
        model_info=CozeModelInfoOut(model_id=config.model.name or "", model_name=config.model.name or "",
                                    temperature=config.model.temperature, top_p=config.model.top_p,
                                    max_tokens=config.model.max_tokens, context_round=config.memory.turns),
        suggest_reply_info=CozeSuggestReplyOut(reply_mode="disable", customized_prompt=""),
        variables=[CozeBotVariable(keyword=v.name, default_value=v.default, variable_type="KVVariable",
                                   channel="custom", description=v.description, enable=True, prompt_enable=True)
                   for v in config.user_variables],
        plugin_info_list=[], workflow_info_list=[])


def simple_bot(agent: AgentOut, version: AgentVersionOut | None) -> CozeSimpleBot:
    source: AgentOut | AgentVersionOut = version or agent
    return CozeSimpleBot(id=str(agent.id), name=source.name, description=source.description,
                         icon_url=icon_url(source.avatar), is_published=agent.published_version is not None,
                         updated_at=wire.timestamp(version.created_at if version else agent.updated_at),
                         published_at=wire.timestamp(agent.published_at) if agent.published_at else None,
                         owner_user_id="")


def space_bot(agent: AgentOut, version: AgentVersionOut | None) -> CozeSpaceBot:
    source: AgentOut | AgentVersionOut = version or agent
    return CozeSpaceBot(bot_id=str(agent.id), bot_name=source.name, description=source.description,
                        icon_url=icon_url(source.avatar), publish_time=str(wire.timestamp(agent.published_at)))


def _refusals(body: _BotFields) -> None:
    """What Stratus cannot honour, refused (4000) before anything is read or written."""
    if body.plugin_id_list is not None and body.plugin_id_list.id_list:
        raise _invalid("plugin_id_list: Coze plugins are not supported here. A Stratus agent calls tools in "
                       "smart-reasoning mode: register a tool provider (/api/v1/tools) and list it in the agent's "
                       "config.tools (PATCH /api/v1/agents/{id})", "coze_plugins_unsupported")
    if body.workflow_id_list is not None and body.workflow_id_list.ids:
        raise _invalid("workflow_id_list: binding workflows to a bot is not supported here. A Stratus agent calls "
                       "published workflows as tools in smart-reasoning mode (config.tools: \"workflow/<id>\", "
                       "PATCH /api/v1/agents/{id}), or runs a chatflow (config.mode \"chatflow\")",
                       "coze_workflows_unsupported")
    if body.suggest_reply_info is not None and body.suggest_reply_info.reply_mode != "disable":
        raise _invalid("suggest_reply_info.reply_mode: Stratus suggests no replies after an answer; only "
                       "\"disable\" is accepted", "coze_suggest_reply_unsupported")
    model = body.model_info_config
    if model is None:
        return
    unsupported = [name for name, given in (
        ("top_k", model.top_k is not None), ("presence_penalty", bool(model.presence_penalty)),
        ("frequency_penalty", bool(model.frequency_penalty)), ("parameters", bool(model.parameters)),
        ("sp_anti_leak", bool(model.sp_anti_leak)), ("sp_current_time", bool(model.sp_current_time)),
        ("response_format", model.response_format not in (None, "text", "markdown"))) if given]
    if unsupported:
        raise _invalid("model_info_config: " + ", ".join(unsupported) + " cannot be honoured here (Stratus passes "
                       "a model temperature, top_p and max_tokens; answers are text); leave them out",
                       "coze_model_setting_unsupported")


def _dataset_ids(values: list[str]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for index, value in enumerate(values):
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            raise _invalid(f"knowledge.dataset_ids[{index}]: {value!r} is not a dataset id",
                           "coze_dataset_unknown") from None
    if len(set(ids)) != len(ids):
        raise _invalid("knowledge.dataset_ids must not repeat an id", "coze_dataset_repeated")
    return ids


def apply(config: AgentConfig, body: _BotFields) -> AgentConfig:
    """``config`` with what ``body`` sets (absent fields stay as they are); a value the agent's
    configuration refuses is a 4000 naming Coze's field."""
    _refusals(body)
    data = config.model_dump(mode="json")
    if body.prompt_info is not None:
        data["system_prompt"] = body.prompt_info.prompt
    onboarding = body.onboarding_info
    if onboarding is not None:
        if onboarding.prologue is not None:
            data["opening_message"] = onboarding.prologue
        if onboarding.suggested_questions is not None:
            data["suggested_questions"] = onboarding.suggested_questions
    knowledge = body.knowledge
    if knowledge is not None:
        data["knowledge"]["knowledge_base_ids"] = [str(i) for i in _dataset_ids(knowledge.dataset_ids)]
        if knowledge.search_strategy is not None:
            if knowledge.search_strategy not in _STRATEGIES:
                raise _invalid("knowledge.search_strategy: give 0 (semantic), 1 (hybrid) or 20 (full-text)",
                               "coze_search_strategy_invalid")
            data["knowledge"]["retrieval"]["mode"] = _STRATEGIES[knowledge.search_strategy]
        if knowledge.auto_call is not None and knowledge.auto_call != (config.mode != "smart-reasoning"):
            raise _invalid(f"knowledge.auto_call: this agent is {config.mode}, which retrieves "
                           + ("when the model asks (auto_call false)" if config.mode == "smart-reasoning"
                              else "on every turn (auto_call true)")
                           + "; change the agent's mode through PATCH /api/v1/agents/{id} to change it",
                           "coze_auto_call_unsupported")
    model = body.model_info_config
    if model is not None:
        data["model"]["name"] = model.model_id
        for name in ("temperature", "top_p", "max_tokens"):
            if getattr(model, name) is not None:
                data["model"][name] = getattr(model, name)
        if model.context_round is not None:
            data["memory"]["turns"] = model.context_round
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = [str(part) for part in error.get("loc", ())]
            # The configuration's own checks (placeholders) are about the prompt.
            where = _CONFIG_FIELDS.get(location[0], location[0]) if location else "prompt_info.prompt"
            if location[:2] == ["model", "name"]:
                where = "model_info_config.model_id"
            problems.append(f"{where}: {error.get('msg', '')}")
        raise _invalid("The bot's configuration is not valid: " + "; ".join(problems),
                       "coze_bot_invalid") from None


# -- use cases --------------------------------------------------------------------------------------
def _ref(principal: Principal, bot_id: str) -> AgentRef:
    """The agent ``bot_id`` names; a key bound to another agent learns nothing about it (4006)."""
    from shared.agents.paths import agent_ref
    from shared.conversations.access import check_agent_allowed

    ref = agent_ref(bot_id)
    if isinstance(ref, uuid.UUID):
        check_agent_allowed(principal, ref)
    return ref


def _agent(principal: Principal, bot_id: str) -> AgentOut:
    from shared.agents.wiring import agent_service
    from shared.conversations.access import check_agent_allowed

    agent = agent_service().get_agent(principal, _ref(principal, bot_id))
    check_agent_allowed(principal, agent.id)  # a slug names a built-in the key is not bound to
    return agent


def _check_datasets(principal: Principal, config: AgentConfig) -> None:
    """Each dataset is a live knowledge base of the tenant (Stratus checks it again at publish)."""
    from shared.errors import NotFound
    from shared.knowledge.wiring import knowledge_base_service

    service = knowledge_base_service()
    for index, kb in enumerate(config.knowledge.knowledge_base_ids):
        try:
            service.get_knowledge_base(principal, kb)
        except NotFound:
            raise _invalid(f"knowledge.dataset_ids[{index}]: dataset {kb} does not exist",
                           "coze_dataset_unknown") from None


def create(principal: Principal, body: CreateCozeBot) -> CozeBotCreated:
    from shared.agents.api import CreateAgent
    from shared.agents.wiring import agent_service
    from shared.conversations.access import bound_agent
    from shared.errors import Forbidden

    if bound_agent(principal) is not None:
        raise Forbidden("A key bound to one agent cannot create bots: use a key of the tenant's member",
                        code="auth_agent_bound")
    config = apply(AgentConfig(), body)
    if body.knowledge is not None:
        _check_datasets(principal, config)
    agent = agent_service().create_agent(principal, CreateAgent(name=body.name, description=body.description or "",
                                                                config=config))
    return CozeBotCreated(bot_id=str(agent.id))


# Reads of the draft an update may take when other writers change it meanwhile.
_UPDATE_ATTEMPTS = 3


def update(principal: Principal, body: UpdateCozeBot) -> CozeEmpty:
    """Coze sends no version: the draft is read and written at once (the last writer wins). A
    draft changed between the read and the write is read again and the update applied to it: the
    client has no version to refresh, and the other writer's fields stay."""
    from shared.agents.api import UpdateAgent
    from shared.agents.errors import AgentVersionConflict
    from shared.agents.wiring import agent_service

    _refusals(body)
    for attempt in range(_UPDATE_ATTEMPTS):
        current = _agent(principal, body.bot_id)
        config = apply(current.config, body)
        if body.knowledge is not None:
            _check_datasets(principal, config)
        changes: dict[str, Any] = {"version": current.version}
        if body.name is not None:
            changes["name"] = body.name
        if body.description is not None:
            changes["description"] = body.description
        if config != current.config:
            changes["config"] = config
        try:
            agent_service().update_agent(principal, current.id, UpdateAgent(**changes))
        except AgentVersionConflict:
            if attempt + 1 == _UPDATE_ATTEMPTS:
                raise wire.CozeError(wire.INVALID_PARAM, "The bot kept changing while this update was applied "
                                     "(other updates at the same moment); send it again", status=409,
                                     code="agent_version_conflict", details={"bot_id": str(current.id)}) from None
            continue
        return CozeEmpty()
    raise AssertionError("unreachable")  # pragma: no cover


def publish(principal: Principal, body: PublishCozeBot) -> CozeBotPublished:
    from shared.agents.api import PublishAgent
    from shared.agents.wiring import agent_service

    version = agent_service().publish_agent(principal, _ref(principal, body.bot_id), PublishAgent())
    return CozeBotPublished(bot_id=str(version.agent_id), version=str(version.number))


def unpublish(principal: Principal, bot_id: str) -> wire.CozeError:
    """Stratus has no unpublishing: the refusal, once the bot is known to the caller."""
    agent = _agent(principal, bot_id)
    return _invalid(f"Bot {agent.id} cannot be unpublished: a Stratus agent's published version answers until "
                    "the agent is deleted (DELETE /api/v1/agents/{id}). To stop an app from chatting with it, "
                    "revoke the app's key (DELETE /api/v1/api-keys/{id})", "coze_unpublish_unsupported")


def retrieve(principal: Principal, bot_id: str, published: bool) -> CozeBot:
    """The published version (a built-in: its fixed configuration), or the draft."""
    from shared.agents.wiring import agent_service

    agent = _agent(principal, bot_id)
    if not published or agent.builtin:
        return coze_bot(agent, None)
    if agent.published_version is None:
        raise wire.CozeError(wire.BOT_NOT_PUBLISHED, "The bot has no published version: publish it "
                             "(/v1/bot/publish), or read its draft (is_published=false)", status=409,
                             code="agent_not_published", details={"bot_id": str(agent.id)})
    return coze_bot(agent, agent_service().get_version(principal, agent.id, agent.published_version))


def _page(principal: Principal, published: bool | None, page_num: int, page_size: int,
          online: bool) -> tuple[list[tuple[AgentOut, AgentVersionOut | None]], int]:
    from shared.agents.repository import AGENT_SORTS
    from shared.agents.wiring import agent_service
    from shared.conversations.access import bound_agent
    from shared.db.paging import page_request

    service = agent_service()
    page = service.list_agents(principal, False, page_request(page_num, page_size, "-updated_at", AGENT_SORTS),
                               published=published, agent_id=bound_agent(principal))
    versions = service.published_versions(principal, [a.id for a in page.items]) if online else {}
    return [(agent, versions.get(agent.id)) for agent in page.items], page.total


def list_bots(principal: Principal, status: PublishStatus, page_num: int, page_size: int) -> CozeBotList:
    """The tenant's agents, most recently changed first, by ``status``: every draft (``all``), the
    published ones as published (``published_online``, the default) or as drafted
    (``published_draft``), the never published (``unpublished_draft``)."""
    found, total = _page(principal, _PUBLISHED_FILTER[status], page_num, page_size, status == "published_online")
    return CozeBotList(items=[simple_bot(agent, version) for agent, version in found], total=total)


def published_bots(principal: Principal, page_num: int, page_size: int) -> CozeSpaceBotList:
    """The older list: the published agents, as published."""
    found, total = _page(principal, True, page_num, page_size, True)
    return CozeSpaceBotList(space_bots=[space_bot(agent, version) for agent, version in found], total=total)
