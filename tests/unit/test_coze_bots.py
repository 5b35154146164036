"""The pure parts of Coze's bots over agents (shared/facades/coze/bots.py): Coze's fields applied
to an agent's configuration (partial, validated, refusals naming Coze's field), and the answers
read back through cozepy's own models (Bot, both list shapes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from cozepy.bots import Bot, BotMode, _PrivateListBotsDataV1, _PrivateListBotsDataV2

from shared.agents.api import AgentOut, AgentVersionOut
from shared.agents.config import AgentConfig
from shared.facades.coze import bots, wire

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EDITED = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
PUBLISHED = datetime(2026, 1, 20, tzinfo=UTC)


def update(**fields: Any) -> bots.UpdateCozeBot:
    return bots.UpdateCozeBot.model_validate({"bot_id": str(uuid.uuid4()), **fields})


def agent(config: AgentConfig | None = None, *, published: int | None = None, **fields: Any) -> AgentOut:
    return AgentOut.model_validate({
        "id": uuid.uuid4(), "slug": None, "builtin": False, "name": "Draft name", "description": "draft",
        "avatar": "https://img.test/a.png", "config": config or AgentConfig(), "published_version": published,
        "published_at": PUBLISHED if published else None, "created_at": CREATED, "updated_at": EDITED, "version": 3,
        **fields})


def version(of: AgentOut, config: AgentConfig, number: int = 2) -> AgentVersionOut:
    return AgentVersionOut(id=uuid.uuid4(), agent_id=of.id, number=number, name="Online name", description="online",
                           avatar="🤖", config=config, note="", published_by=None, created_at=PUBLISHED)


def refused(call: Any) -> wire.CozeError:
    with pytest.raises(wire.CozeError) as caught:
        call()
    assert caught.value.coze_code == wire.INVALID_PARAM
    return caught.value


# Applying Coze's fields ---------------------------------------------------------------------------
def test_each_coze_field_lands_in_the_agent_configuration() -> None:
    kb = uuid.uuid4()
    config = bots.apply(AgentConfig(), update(
        prompt_info={"prompt": "You sell tea."},
        onboarding_info={"prologue": "Hi!", "suggested_questions": ["Green or black?"]},
        knowledge={"dataset_ids": [str(kb)], "auto_call": True, "search_strategy": 20},
        model_info_config={"model_id": "scripted", "temperature": 0.2, "top_p": 0.9, "max_tokens": 300,
                           "context_round": 4, "response_format": "markdown", "cache_type": "closed"}))
    assert config.system_prompt == "You sell tea."
    assert (config.opening_message, config.suggested_questions) == ("Hi!", ["Green or black?"])
    assert config.knowledge.knowledge_base_ids == [kb] and config.knowledge.retrieval.mode == "full_text"
    assert (config.model.name, config.model.temperature, config.model.top_p, config.model.max_tokens) == (
        "scripted", 0.2, 0.9, 300)
    assert config.memory.turns == 4


def test_an_update_changes_only_what_it_names() -> None:
    before = AgentConfig.model_validate({"system_prompt": "Old", "opening_message": "Hello",
                                         "suggested_questions": ["Q?"], "model": {"name": "m1", "temperature": 0.5}})
    after = bots.apply(before, update(onboarding_info={"prologue": "Welcome"},
                                      model_info_config={"model_id": "m2"}))
    assert after.system_prompt == "Old" and after.suggested_questions == ["Q?"]
    assert after.opening_message == "Welcome"
    assert (after.model.name, after.model.temperature) == ("m2", 0.5)
    assert bots.apply(before, update(name="Renamed")) == before


@pytest.mark.parametrize(("strategy", "mode"), [(0, "semantic"), (1, "hybrid"), (20, "full_text")])
def test_search_strategies_are_retrieval_modes_both_ways(strategy: int, mode: str) -> None:
    config = bots.apply(AgentConfig(), update(knowledge={"dataset_ids": [], "search_strategy": strategy}))
    assert config.knowledge.retrieval.mode == mode
    shown = bots.coze_bot(agent(config), None)
    assert shown.knowledge.search_strategy == strategy


@pytest.mark.parametrize(("fields", "named"), [
    ({"plugin_id_list": {"id_list": [{"plugin_id": "7", "api_id": "8"}]}}, "plugin_id_list"),
    ({"workflow_id_list": {"ids": [{"id": "9"}]}}, "workflow_id_list"),
    ({"suggest_reply_info": {"reply_mode": "enable"}}, "suggest_reply_info"),
    ({"model_info_config": {"model_id": "m", "top_k": 5}}, "top_k"),
    ({"model_info_config": {"model_id": "m", "presence_penalty": 0.5}}, "presence_penalty"),
    ({"model_info_config": {"model_id": "m", "response_format": "json"}}, "response_format"),
    ({"model_info_config": {"model_id": "m", "parameters": {"thinking_type": "enable"}}}, "parameters"),
    ({"model_info_config": {"model_id": "m", "sp_current_time": True}}, "sp_current_time"),
    ({"knowledge": {"dataset_ids": [], "search_strategy": 2}}, "search_strategy"),
    ({"knowledge": {"dataset_ids": ["not-an-id"]}}, "dataset_ids[0]"),
    ({"knowledge": {"dataset_ids": [], "auto_call": False}}, "auto_call"),
    ({"prompt_info": {"prompt": "Hello {{who}}"}}, "prompt_info.prompt"),
    ({"model_info_config": {"model_id": "Not A Name"}}, "model_info_config.model_id"),
])
def test_what_stratus_cannot_honour_is_refused_naming_coze_s_field(fields: dict[str, Any], named: str) -> None:
    error = refused(lambda: bots.apply(AgentConfig(), update(**fields)))
    assert named in error.message


def test_empty_plugin_and_workflow_lists_and_neutral_settings_are_accepted() -> None:
    config = bots.apply(AgentConfig(), update(
        plugin_id_list={"id_list": []}, workflow_id_list={"ids": []}, suggest_reply_info={"reply_mode": "disable"},
        model_info_config={"model_id": "m", "presence_penalty": 0, "frequency_penalty": 0.0, "parameters": {},
                           "sp_anti_leak": False}))
    assert config.model.name == "m"


def test_auto_call_follows_the_agent_s_mode() -> None:
    reasoning = AgentConfig(mode="smart-reasoning")
    assert bots.apply(reasoning, update(knowledge={"dataset_ids": [], "auto_call": False})).mode == "smart-reasoning"
    assert "smart-reasoning" in refused(lambda: bots.apply(reasoning, update(
        knowledge={"dataset_ids": [], "auto_call": True}))).message
    assert bots.coze_bot(agent(reasoning), None).knowledge.auto_call is False
    assert bots.coze_bot(agent(AgentConfig()), None).knowledge.auto_call is True


# Answers, as cozepy reads them --------------------------------------------------------------------
def test_a_draft_and_a_published_version_read_as_cozepy_bots() -> None:
    draft_config = AgentConfig.model_validate({
        "system_prompt": "Draft prompt {{city}}", "opening_message": "Hello", "suggested_questions": ["Why?"],
        "user_variables": [{"name": "city", "description": "Where", "default": "Lyon"}],
        "model": {"name": "scripted", "temperature": 0.3, "max_tokens": 100}, "memory": {"turns": 6}})
    row = agent(draft_config, published=2)
    draft = Bot.model_validate(bots.coze_bot(row, None).model_dump(mode="json"))
    assert (draft.bot_id, draft.name, draft.version, draft.bot_mode) == (str(row.id), "Draft name", "2",
                                                                         BotMode.SINGLE_AGENT)
    assert (draft.create_time, draft.update_time) == (int(CREATED.timestamp()), int(EDITED.timestamp()))
    assert draft.icon_url == "https://img.test/a.png"
    assert draft.prompt_info is not None and draft.prompt_info.prompt == "Draft prompt {{city}}"
    assert draft.onboarding_info is not None and draft.onboarding_info.suggested_questions == ["Why?"]
    assert draft.model_info is not None and (draft.model_info.model_id, draft.model_info.temperature,
                                             draft.model_info.max_tokens, draft.model_info.context_round) == (
        "scripted", 0.3, 100, 6)
    assert draft.variables is not None and [(v.keyword, v.default_value) for v in draft.variables] == [
        ("city", "Lyon")]
    assert draft.plugin_info_list == [] and draft.workflow_info_list == []

    online = Bot.model_validate(bots.coze_bot(row, version(row, AgentConfig(system_prompt="Online"))).model_dump(
        mode="json"))
    assert (online.name, online.description, online.version, online.icon_url) == ("Online name", "online", "2", "")
    assert online.prompt_info is not None and online.prompt_info.prompt == "Online"
    assert online.update_time == int(PUBLISHED.timestamp())


def test_a_chatflow_agent_is_coze_s_workflow_mode_and_a_never_published_draft_is_version_0() -> None:
    shown = bots.coze_bot(agent(AgentConfig(mode="chatflow")), None)
    assert (shown.bot_mode, shown.version) == (bots.SINGLE_AGENT_WORKFLOW, "0")


def test_both_list_shapes_read_as_cozepy_pages() -> None:
    published = agent(published=1)
    draft = agent()
    listed = bots.CozeBotList(items=[bots.simple_bot(published, version(published, AgentConfig(), 1)),
                                     bots.simple_bot(draft, None)], total=7)
    page = _PrivateListBotsDataV2.model_validate(listed.model_dump(mode="json"))
    items = page.get_items()
    assert page.get_total() == 7 and [i.id for i in items] == [str(published.id), str(draft.id)]
    assert [(i.name, i.is_published, i.published_at) for i in items] == [
        ("Online name", True, int(PUBLISHED.timestamp())), ("Draft name", False, None)]

    older = bots.CozeSpaceBotList(space_bots=[bots.space_bot(published, version(published, AgentConfig(), 1))],
                                  total=1)
    v1 = _PrivateListBotsDataV1.model_validate(older.model_dump(mode="json"))
    [bot] = v1.get_items()
    assert (bot.id, bot.name, bot.published_at) == (str(published.id), "Online name", int(PUBLISHED.timestamp()))


def test_an_update_meeting_another_change_is_applied_to_the_changed_draft(monkeypatch: pytest.MonkeyPatch) -> None:
    """Coze sends no version: a draft changed between the read and the write (another update at
    the same moment) is read again and the partial update applied to it, not refused with a
    version conflict the client cannot resolve, and not written over the other change."""
    from shared.agents import wiring
    from shared.agents.api import UpdateAgent
    from shared.agents.errors import AgentVersionConflict
    from shared.auth.principal import Principal

    first = agent(AgentConfig(system_prompt="Old prompt."))
    # Meanwhile another writer changed the opening message (version 3 -> 4).
    second = first.model_copy(update={"version": 4, "config": AgentConfig(system_prompt="Old prompt.",
                                                                           opening_message="Hello!")})
    written: list[UpdateAgent] = []

    class Agents:
        def __init__(self) -> None:
            self.reads = [first, second]

        def get_agent(self, principal: Any, ref: Any) -> AgentOut:
            return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]

        def update_agent(self, principal: Any, ref: Any, body: UpdateAgent) -> AgentOut:
            if body.version != 4:
                raise AgentVersionConflict(details={"version": 4})
            written.append(body)
            return second

    principal = Principal("api_key", uuid.uuid4(), tenant_id=uuid.uuid4(), user_id=uuid.uuid4(), role="owner")
    agents = Agents()
    monkeypatch.setattr(wiring, "agent_service", lambda: agents)
    bots.update(principal, update(bot_id=str(first.id), prompt_info={"prompt": "New prompt."}))
    assert len(written) == 1 and written[0].version == 4 and written[0].config is not None
    assert (written[0].config.system_prompt, written[0].config.opening_message) == ("New prompt.", "Hello!")
