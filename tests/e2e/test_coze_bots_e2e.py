"""Coze's bots over Stratus's agents, driven by the official ``cozepy`` SDK against the local
runtime (docs/coze-api.md "Bots"): a bot created, updated and published through ``coze.bots``
is an agent that ``coze.chat.stream`` then chats with; retrieved published and as a draft (both
of cozepy's retrieves), listed in both of cozepy's list shapes; errors as ``CozeAPIError`` with
Coze's codes (bad token, unknown bot, another tenant's bot, a key bound to another agent, bad
input), bad input changing nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cozepy import (
    BotKnowledge,
    BotModelInfo,
    BotOnboardingInfo,
    BotPromptInfo,
    ChatEventType,
    Coze,
    CozeAPIError,
    DocumentFormatType,
    Message,
    PublishStatus,
    TokenAuth,
)
from cozepy.bots import PluginIDList

from tests.e2e.conftest import RunningRuntime
from tests.support.e2e_tenant import ScriptedTenant
from tests.support.fake_openai import ChatScript, FakeOpenAI


class Tenant(ScriptedTenant):
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        super().__init__(runtime, fake, name, owner={"owner_email": f"owner@{name}.test"})

    def agent(self, agent_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/agents/{agent_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def coze(self, token: str | None = None) -> Coze:
        return Coze(auth=TokenAuth(token or self.token), base_url=f"{self.runtime.url}/coze")

    def bot(self, name: str, prompt: str = "You sell tea.", *, publish: bool = False) -> str:
        coze = self.coze()
        bot_id = coze.bots.create(space_id="0", name=name, prompt_info=BotPromptInfo(prompt=prompt),
                                  model_info_config=BotModelInfo(model_id="scripted")).bot_id
        if publish:
            coze.bots.publish(bot_id=bot_id)
        return bot_id


@pytest.fixture(scope="module")
def setup(runtime: RunningRuntime, fake: FakeOpenAI) -> dict[str, Any]:
    return {"tenant": Tenant(runtime, fake, "e2e-coze-bots"), "stranger": Tenant(runtime, fake, "e2e-coze-bots-x")}


def refused(call: Any) -> CozeAPIError:
    with pytest.raises(CozeAPIError) as caught:
        call()
    assert caught.value.logid
    return caught.value


def _question(text: str) -> list[Message]:
    return [Message.build_user_question_text(text)]


def _chat(coze: Coze, bot_id: str, fake: FakeOpenAI, answer: str) -> tuple[str, str]:
    """(the answer streamed, the system prompt the model was sent)."""
    fake.reset()
    fake.enqueue(ChatScript(text=[answer]))
    events = list(coze.chat.stream(bot_id=bot_id, user_id="alice", additional_messages=_question("Hello?")))
    assert events[-1].event == ChatEventType.CONVERSATION_CHAT_COMPLETED, [e.event for e in events]
    text = "".join(e.message.content for e in events
                   if e.event == ChatEventType.CONVERSATION_MESSAGE_DELTA and e.message is not None)
    return text, fake.chat_requests()[-1]["messages"][0]["content"]


def test_a_bot_is_created_updated_published_retrieved_and_chats(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    created = coze.bots.create(
        space_id="0", name="Tea shop", description="Sells tea", prompt_info=BotPromptInfo(prompt="You sell tea."),
        onboarding_info=BotOnboardingInfo(prologue="Welcome!", suggested_questions=["Green or black?"]),
        model_info_config=BotModelInfo(model_id="scripted", temperature=0.2, max_tokens=200, context_round=3))
    bot_id = created.bot_id
    assert created.response.logid
    # It is an agent of the tenant, its draft configured from Coze's fields.
    agent = tenant.agent(bot_id)
    assert (agent["name"], agent["description"], agent["published_version"]) == ("Tea shop", "Sells tea", None)
    config = agent["config"]
    assert (config["system_prompt"], config["opening_message"], config["suggested_questions"]) == (
        "You sell tea.", "Welcome!", ["Green or black?"])
    assert (config["model"]["name"], config["model"]["temperature"], config["model"]["max_tokens"],
            config["memory"]["turns"]) == ("scripted", 0.2, 200, 3)

    draft = coze.bots.retrieve(bot_id=bot_id, is_published=False, use_api_version=2)
    assert (draft.bot_id, draft.name, draft.description, draft.version) == (bot_id, "Tea shop", "Sells tea", "0")
    assert draft.prompt_info is not None and draft.prompt_info.prompt == "You sell tea."
    assert draft.onboarding_info is not None and draft.onboarding_info.prologue == "Welcome!"
    assert draft.model_info is not None and (draft.model_info.model_id, draft.model_info.temperature) == (
        "scripted", 0.2)
    assert draft.create_time and draft.update_time and draft.plugin_info_list == []
    # Not published yet: Coze's 4015 for the published version, through either retrieve.
    assert refused(lambda: coze.bots.retrieve(bot_id=bot_id, use_api_version=2)).code == 4015
    assert refused(lambda: coze.bots.retrieve(bot_id=bot_id)).code == 4015

    published = coze.bots.publish(bot_id=bot_id, connector_ids=["1024"])
    assert (published.bot_id, published.version) == (bot_id, "1")
    # The published bot answers Coze's chat.
    assert _chat(coze, bot_id, fake, "We have green tea.") == ("We have green tea.", "You sell tea.")

    # A partial update changes the draft only: the published version still answers.
    coze.bots.update(bot_id=bot_id, name="Tea house", prompt_info=BotPromptInfo(prompt="You sell green tea."))
    changed = coze.bots.retrieve(bot_id=bot_id, is_published=False, use_api_version=2)
    assert (changed.name, changed.description, changed.version) == ("Tea house", "Sells tea", "1")
    assert changed.prompt_info is not None and changed.prompt_info.prompt == "You sell green tea."
    assert changed.onboarding_info is not None and changed.onboarding_info.prologue == "Welcome!"
    online = coze.bots.retrieve(bot_id=bot_id, use_api_version=2)
    assert (online.name, online.version) == ("Tea shop", "1")
    assert online.prompt_info is not None and online.prompt_info.prompt == "You sell tea."
    older = coze.bots.retrieve(bot_id=bot_id)  # /v1/bot/get_online_info
    assert (older.name, older.version) == ("Tea shop", "1")
    assert _chat(coze, bot_id, fake, "Tea.")[1] == "You sell tea."

    assert coze.bots.publish(bot_id=bot_id).version == "2"
    assert coze.bots.retrieve(bot_id=bot_id, use_api_version=2).name == "Tea house"
    assert _chat(coze, bot_id, fake, "Green.") == ("Green.", "You sell green tea.")


def test_a_bot_s_knowledge_is_the_tenant_s_datasets(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    dataset = coze.datasets.create(name=f"Teas {uuid.uuid4().hex[:6]}", space_id="0",
                                   format_type=DocumentFormatType.DOCUMENT).dataset_id
    bot_id = tenant.bot(f"Librarian {uuid.uuid4().hex[:6]}")
    coze.bots.update(bot_id=bot_id, knowledge=BotKnowledge(dataset_ids=[dataset], auto_call=True,
                                                           search_strategy=1))
    shown = coze.bots.retrieve(bot_id=bot_id, is_published=False, use_api_version=2)
    assert shown.knowledge is not None and (shown.knowledge.dataset_ids, shown.knowledge.auto_call,
                                            shown.knowledge.search_strategy) == ([dataset], True, 1)
    assert tenant.agent(bot_id)["config"]["knowledge"]["knowledge_base_ids"] == [dataset]
    # An unknown dataset, or on-demand retrieval for a quick-answer agent: 4000, nothing changes.
    for knowledge in (BotKnowledge(dataset_ids=[str(uuid.uuid4())]), BotKnowledge(dataset_ids=[], auto_call=False)):
        assert refused(lambda k=knowledge: coze.bots.update(bot_id=bot_id, knowledge=k)).code == 4000
    assert tenant.agent(bot_id)["config"]["knowledge"]["knowledge_base_ids"] == [dataset]
    assert coze.bots.publish(bot_id=bot_id).version == "1"


def test_the_space_s_bots_are_listed_in_both_of_cozepy_s_shapes(runtime: RunningRuntime, fake: FakeOpenAI) -> None:
    tenant = Tenant(runtime, fake, "e2e-coze-bots-list")
    coze = tenant.coze()
    online = tenant.bot("Online", publish=True)
    coze.bots.update(bot_id=online, name="Online (edited)")
    drafts = [tenant.bot(f"Draft {n}") for n in range(3)]

    def listed(status: PublishStatus | None, page_size: int = 20) -> list[tuple[str, str, bool]]:
        pages = coze.bots.list(space_id="0", publish_status=status, page_size=page_size, use_api_version=2)
        return [(bot.id, bot.name, bot.is_published) for bot in pages]

    assert sorted(listed(PublishStatus.ALL)) == sorted(
        [(online, "Online (edited)", True)] + [(d, f"Draft {n}", False) for n, d in enumerate(drafts)])
    assert listed(None) == listed(PublishStatus.PUBLISHED_ONLINE) == [(online, "Online", True)]
    assert listed(PublishStatus.PUBLISHED_DRAFT) == [(online, "Online (edited)", True)]
    assert sorted(listed(PublishStatus.UNPUBLISHED_DRAFT, page_size=2)) == sorted(
        (d, f"Draft {n}", False) for n, d in enumerate(drafts))
    page = coze.bots.list(space_id="0", publish_status=PublishStatus.ALL, page_size=3, use_api_version=2)
    assert (page.total, len(page.items), page.has_more) == (4, 3, True)
    # The older list: the published bots, as published.
    older = list(coze.bots.list(space_id="0"))
    assert [(bot.bot_id, bot.bot_name, bot.is_published) for bot in older] == [(online, "Online", True)]
    assert older[0].published_at and older[0].publish_time == str(older[0].published_at)


def test_bot_errors_are_coze_s_and_change_nothing(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    stranger: Tenant = setup["stranger"]
    coze = tenant.coze()
    bot_id = tenant.bot(f"Guarded {uuid.uuid4().hex[:6]}", publish=True)
    before = tenant.agent(bot_id)
    # Unknown bot, a malformed id, another tenant's bot: Coze's invalid bot (4006).
    theirs = stranger.coze()
    for call in (lambda: coze.bots.retrieve(bot_id=str(uuid.uuid4()), use_api_version=2),
                 lambda: coze.bots.retrieve(bot_id="not-a-bot", is_published=False, use_api_version=2),
                 lambda: coze.bots.update(bot_id=str(uuid.uuid4()), name="x"),
                 lambda: theirs.bots.retrieve(bot_id=bot_id, is_published=False, use_api_version=2),
                 lambda: theirs.bots.retrieve(bot_id=bot_id),
                 lambda: theirs.bots.update(bot_id=bot_id, name="Hijacked"),
                 lambda: theirs.bots.publish(bot_id=bot_id),
                 lambda: theirs.bots.unpublish(bot_id=bot_id, connector_id="1024")):
        assert refused(call).code == 4006
    assert [b.id for b in theirs.bots.list(space_id="0", publish_status=PublishStatus.ALL,
                                           use_api_version=2)] == []
    # A bad token: 4100.
    assert refused(lambda: tenant.coze("pat_" + "0" * 40).bots.retrieve(bot_id=bot_id)).code == 4100
    # What Stratus cannot honour, or bad input: 4000 naming it, nothing changed.
    plugins = PluginIDList(id_list=[PluginIDList.PluginIDInfo(plugin_id="7", api_id="8")])
    for call, named in (
            (lambda: coze.bots.update(bot_id=bot_id, name="x" * 101), "name"),
            (lambda: coze.bots.update(bot_id=bot_id, name="Renamed", prompt_info=BotPromptInfo(prompt="Hi {{who}}")),
             "prompt_info.prompt"),
            (lambda: coze.bots.update(bot_id=bot_id, name="Renamed",
                                      model_info_config=BotModelInfo(model_id="scripted", top_k=3)), "top_k"),
            (lambda: coze.bots.create(space_id="0", name="With plugins", plugin_id_list=plugins), "plugin_id_list"),
            (lambda: coze.bots.unpublish(bot_id=bot_id, connector_id="1024"), "DELETE /api/v1/agents")):
        error = refused(call)
        assert error.code == 4000 and named in (error.msg or ""), error
    after = tenant.agent(bot_id)
    assert (after["name"], after["config"], after["version"], after["published_version"]) == (
        before["name"], before["config"], before["version"], before["published_version"])
    assert "With plugins" not in [b.name for b in coze.bots.list(space_id="0", publish_status=PublishStatus.ALL,
                                                                 use_api_version=2)]
    # Validation is Coze's error body with the X-Tt-Logid header.
    raw = tenant.http.post("/coze/v1/bot/create", headers=tenant.headers, json={"space_id": "0"})
    assert raw.status_code == 400 and raw.json()["code"] == 4000 and "name" in raw.json()["msg"]
    assert raw.headers["X-Tt-Logid"] == raw.json()["detail"]["logid"]
    # Publishing a draft Stratus cannot run (an unknown model): 4000 naming it; the draft stays unpublished.
    broken = coze.bots.create(space_id="0", name=f"Broken {uuid.uuid4().hex[:6]}",
                              model_info_config=BotModelInfo(model_id="no-such-model")).bot_id
    assert refused(lambda: coze.bots.publish(bot_id=broken)).code == 4000
    assert tenant.agent(broken)["published_version"] is None
    # A key that may only chat (agent:run) reads and writes no bots: Coze's 4101.
    runner = tenant.post("/api/v1/api-keys", {"name": "chat only", "scopes": ["agent:run"]})["token"]
    assert refused(lambda: tenant.coze(runner).bots.retrieve(bot_id=bot_id)).code == 4101
    assert refused(lambda: tenant.coze(runner).bots.create(space_id="0", name="Nope")).code == 4101


def test_a_key_bound_to_one_bot_sees_and_changes_that_bot_alone(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    mine = tenant.bot(f"Bound {uuid.uuid4().hex[:6]}", publish=True)
    other = tenant.bot(f"Unbound {uuid.uuid4().hex[:6]}", publish=True)
    key = tenant.post("/api/v1/api-keys", {"name": "bot app", "resource_type": "agent", "resource_id": mine})
    bound = tenant.coze(key["token"])
    assert bound.bots.retrieve(bot_id=mine, use_api_version=2).bot_id == mine
    bound.bots.update(bot_id=mine, prompt_info=BotPromptInfo(prompt="You are the bound bot."))
    assert bound.bots.publish(bot_id=mine).version == "2"
    assert _chat(bound, mine, fake, "Bound.") == ("Bound.", "You are the bound bot.")
    assert [b.id for b in bound.bots.list(space_id="0", publish_status=PublishStatus.ALL, use_api_version=2)] == [
        mine]
    assert [b.bot_id for b in bound.bots.list(space_id="0")] == [mine]
    before = tenant.agent(other)
    for call in (lambda: bound.bots.retrieve(bot_id=other, use_api_version=2),
                 lambda: bound.bots.retrieve(bot_id=other),
                 lambda: bound.bots.update(bot_id=other, name="Taken"),
                 lambda: bound.bots.publish(bot_id=other),
                 lambda: bound.bots.retrieve(bot_id="builtin-quick-answer", is_published=False, use_api_version=2)):
        assert refused(call).code == 4006
    assert refused(lambda: bound.bots.create(space_id="0", name="Another")).code == 4101
    assert tenant.agent(other) == before
