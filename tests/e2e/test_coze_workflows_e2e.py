"""Coze's workflow API over Stratus's workflows, driven by the official ``cozepy`` SDK against the
local runtime (``coze.workflows``; docs/coze-api.md "Workflows"): runs waited for, run
asynchronously and polled through run histories, streamed as Coze's events, paused for human input
and resumed with ``stream_resume``; workflows listed, read and their versions; a chatflow's chat;
and the errors (a bad token, an unknown workflow, another tenant's, a bound key's other workflow)
as ``CozeAPIError`` with Coze's codes. The model is the local server speaking OpenAI's wire."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cozepy import (
    ChatEventType,
    Coze,
    CozeAPIError,
    Message,
    TokenAuth,
    WorkflowEventType,
    WorkflowExecuteStatus,
)

from tests.e2e.conftest import RunningRuntime, start_runtime
from tests.support.e2e_tenant import ScriptedTenant
from tests.support.fake_openai import ChatScript, FakeOpenAI

SYNC_WAIT_S = 8


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    # A short sync bound: a run still going after it is Coze's error within the test.
    running = start_runtime(tmp_path_factory.mktemp("e2e-coze-workflows") / "state",
                            WORKFLOW_SYNC_WAIT_S=str(SYNC_WAIT_S))
    yield running
    running.stop()


class Tenant(ScriptedTenant):
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        super().__init__(runtime, fake, name, default_model="scripted")

    def published(self, name: str, document: dict[str, Any], *, times: int = 1) -> str:
        workflow = self.post("/api/v1/workflows", {"name": name, "description": f"The {name}", "document": document})
        for _ in range(times):
            self.post(f"/api/v1/workflows/{workflow['id']}/publish", {})
        return str(workflow["id"])

    def key(self, workflow_id: str) -> str:
        key = self.post("/api/v1/api-keys", {"name": f"coze {workflow_id}", "resource_type": "workflow",
                                             "resource_id": workflow_id})
        return str(key["token"])

    def coze(self, token: str | None = None) -> Coze:
        return Coze(auth=TokenAuth(token or self.token), base_url=f"{self.runtime.url}/coze")


ANSWERER = {"nodes": [
    {"id": "start", "type": "start", "config": {"variables": [{"variable": "q", "required": True}]}},
    {"id": "llm", "type": "llm", "config": {"prompt_template": [{"role": "user", "text": "{{#start.q#}}"}]}},
    {"id": "end", "type": "end", "title": "Result", "config": {"outputs": [
        {"variable": "answer", "value_selector": ["llm", "text"]}]}}],
    "edges": [{"source": "start", "target": "llm"}, {"source": "llm", "target": "end"}]}
REVIEW = {"nodes": [
    {"id": "start", "type": "start", "config": {"variables": [{"variable": "topic", "required": True}]}},
    {"id": "review", "type": "human_input", "title": "Review", "config": {
        "form_content": "Review {{#start.topic#}}",
        "fields": [{"name": "verdict", "type": "select", "options": ["ship", "hold"], "required": True},
                   {"name": "score", "type": "number", "required": True}]}},
    {"id": "end", "type": "end", "config": {"outputs": [
        {"variable": "verdict", "value_selector": ["review", "verdict"]},
        {"variable": "score", "value_selector": ["review", "score"]}]}}],
    "edges": [{"source": "start", "target": "review"}, {"source": "review", "target": "end"}]}
CHATFLOW = {"mode": "chatflow", "nodes": [
    {"id": "start", "type": "start"},
    {"id": "llm", "type": "llm", "config": {"prompt_template": [{"role": "user", "text": "{{#sys.query#}}"}]}},
    {"id": "reply", "type": "answer", "config": {"answer": "Sure: {{#llm.text#}}"}}],
    "edges": [{"source": "start", "target": "llm"}, {"source": "llm", "target": "reply"}]}

ASKING_CHATFLOW = {"mode": "chatflow", "nodes": [
    {"id": "start", "type": "start"},
    {"id": "ask", "type": "human_input", "title": "Ask", "config": {
        "form_content": "About {{#sys.query#}}", "fields": [{"name": "note", "type": "text", "required": True}]}},
    {"id": "reply", "type": "answer", "config": {"answer": "Noted: {{#ask.note#}}"}}],
    "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "reply"}]}


@pytest.fixture(scope="module")
def setup(runtime: RunningRuntime, fake: FakeOpenAI) -> dict[str, Any]:
    tenant = Tenant(runtime, fake, "e2e-coze-workflows")
    stranger = Tenant(runtime, fake, "e2e-coze-workflows-stranger")
    return {"tenant": tenant, "answerer": tenant.published("Answerer", ANSWERER, times=2),
            "review": tenant.published("Review", REVIEW), "chatflow": tenant.published("Flow", CHATFLOW),
            "stranger": stranger, "strangers": stranger.published("Not yours", ANSWERER)}


def test_a_sync_run_answers_the_outputs(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Paris."], usage=(10, 2)))
    result = tenant.coze().workflows.runs.create(workflow_id=setup["answerer"], parameters={"q": "France?"},
                                                 bot_id="ignored", ext={"user_id": "u1"})
    assert json.loads(result.data or "") == {"answer": "Paris."}
    assert result.execute_id and result.debug_url == ""
    assert result.usage is not None and result.usage.token_count == 12
    # The run is Stratus's own.
    run = tenant.http.get(f"/api/v1/workflow-runs/{result.execute_id}", headers=tenant.headers).json()["data"]
    assert run["status"] == "succeeded" and run["inputs"] == {"q": "France?"}
    # The wire answer is the one OpenAPI describes (fields beside data).
    from shared.facades.coze.workflows import CozeWorkflowRunAnswer

    fake.enqueue(ChatScript(text=["Rome."]))
    raw = tenant.http.post("/coze/v1/workflow/run", headers=tenant.headers,
                           json={"workflow_id": setup["answerer"], "parameters": {"q": "Italy?"}})
    answer = CozeWorkflowRunAnswer.model_validate(raw.json())
    assert json.loads(answer.data) == {"answer": "Rome."} and answer.execute_id


def test_an_async_run_is_polled_through_its_run_history(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    fake.reset()
    fake.enqueue(ChatScript(text=["Ber", "lin."], usage=(7, 3), first_byte_delay_s=1))
    started = coze.workflows.runs.create(workflow_id=setup["answerer"], parameters={"q": "Germany?"}, is_async=True)
    assert started.execute_id and started.data == ""
    deadline = time.monotonic() + 60
    while True:
        history = coze.workflows.runs.run_histories.retrieve(workflow_id=setup["answerer"],
                                                             execute_id=started.execute_id)
        if history.execute_status != WorkflowExecuteStatus.RUNNING:
            break
        assert history.output == ""
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert history.execute_status == WorkflowExecuteStatus.SUCCESS, history
    assert json.loads(history.output) == {"answer": "Berlin."}
    assert history.execute_id == started.execute_id and history.error_code == 0 and history.debug_url == ""
    assert history.run_mode == 2 and history.usage is not None and history.usage.token_count == 10
    assert history.create_time <= history.update_time and history.logid
    # Another workflow's path does not find the run.
    with pytest.raises(CozeAPIError) as missing:
        coze.workflows.runs.run_histories.retrieve(workflow_id=setup["review"], execute_id=started.execute_id)
    assert missing.value.code == 4200


def test_a_sync_run_still_going_points_to_async_and_streaming(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["slow"], first_byte_delay_s=SYNC_WAIT_S + 4))
    began = time.monotonic()
    with pytest.raises(CozeAPIError) as pending:
        tenant.coze().workflows.runs.create(workflow_id=setup["answerer"], parameters={"q": "Take your time"})
    assert time.monotonic() - began < SYNC_WAIT_S + 4
    assert pending.value.code == 4000 and "is_async" in (pending.value.msg or "")
    assert "stream_run" in (pending.value.msg or "") and pending.value.logid


def test_stream_run_sends_coze_s_events_with_ids(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Ro", "me."], usage=(4, 2)))
    events = list(tenant.coze().workflows.runs.stream(workflow_id=setup["answerer"], parameters={"q": "Italy?"}))
    # Done ends cozepy's iteration (its handler returns None for it).
    assert [event.event for event in events] == [WorkflowEventType.MESSAGE]
    message = events[0].message
    assert message is not None and json.loads(message.content) == {"answer": "Rome."}
    assert message.node_title == "Result" and message.node_is_finish and message.node_seq_id == "0"
    assert message.usage is not None and message.usage.token_count == 6
    assert events[0].id == 0
    # On the wire: id, event and data lines, Done last.
    fake.enqueue(ChatScript(text=["Oslo."]))
    with tenant.http.stream("POST", "/coze/v1/workflow/stream_run", headers=tenant.headers,
                            json={"workflow_id": setup["answerer"], "parameters": {"q": "Norway?"}}) as response:
        assert response.headers["x-tt-logid"]
        lines = [line for line in response.iter_lines() if line]
    assert lines[:2] == ["id:0", "event:Message"] and lines[3:5] == ["id:1", "event:Done"]


def test_an_interrupt_is_resumed_with_stream_resume(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    events = list(coze.workflows.runs.stream(workflow_id=setup["review"], parameters={"topic": "moths"}))
    assert [event.event for event in events] == [WorkflowEventType.INTERRUPT]
    interrupt = events[0].interrupt
    assert interrupt is not None and interrupt.node_title == "Review" and interrupt.interrupt_data.type == 5
    run_id = interrupt.interrupt_data.event_id.split("/")[0]
    run = tenant.http.get(f"/api/v1/workflow-runs/{run_id}", headers=tenant.headers).json()["data"]
    assert run["status"] == "paused" and run["pause"]["node_id"] == "review"
    # A bad answer changes nothing: Coze's 4000 naming the fields.
    with pytest.raises(CozeAPIError) as bad:
        list(coze.workflows.runs.resume(workflow_id=setup["review"], event_id=interrupt.interrupt_data.event_id,
                                        resume_data=json.dumps({"verdict": "maybe", "score": 1}),
                                        interrupt_type=interrupt.interrupt_data.type))
    assert bad.value.code == 4000 and "verdict" in (bad.value.msg or "")
    resumed = list(coze.workflows.runs.resume(workflow_id=setup["review"], event_id=interrupt.interrupt_data.event_id,
                                              resume_data=json.dumps({"verdict": "ship", "score": 9}),
                                              interrupt_type=interrupt.interrupt_data.type))
    assert [event.event for event in resumed] == [WorkflowEventType.MESSAGE]
    assert resumed[0].message is not None and json.loads(resumed[0].message.content) == {"verdict": "ship",
                                                                                         "score": 9}
    history = coze.workflows.runs.run_histories.retrieve(workflow_id=setup["review"], execute_id=run_id)
    assert history.execute_status == WorkflowExecuteStatus.SUCCESS and history.run_mode == 1
    # The pause is answered: resuming again is refused.
    with pytest.raises(CozeAPIError) as again:
        list(coze.workflows.runs.resume(workflow_id=setup["review"], event_id=interrupt.interrupt_data.event_id,
                                        resume_data=json.dumps({"verdict": "hold", "score": 1}), interrupt_type=5))
    assert again.value.code == 4000


def test_workflows_are_listed_read_and_versioned(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    listed = {item.workflow_id: item for item in coze.workflows.list(page_size=2)}
    assert set(listed) == {setup["answerer"], setup["review"], setup["chatflow"]}
    answerer = listed[setup["answerer"]]
    assert answerer.workflow_name == "Answerer" and answerer.description == "The Answerer"
    assert answerer.icon_url == "" and answerer.app_id == "" and answerer.created_at
    info = coze.workflows.retrieve(workflow_id=setup["answerer"])
    assert info.workflow_detail.workflow_id == setup["answerer"] and info.workflow_detail.workflow_name == "Answerer"
    versions = list(coze.workflows.versions.list(workflow_id=setup["answerer"], page_size=1))
    assert [v.version for v in versions] == ["2", "1"]
    assert all(v.workflow_id == setup["answerer"] and v.created_at.isdigit() for v in versions)
    # A key bound to one workflow sees that one only.
    bound = tenant.coze(tenant.key(setup["review"]))
    assert [item.workflow_id for item in bound.workflows.list()] == [setup["review"]]
    with pytest.raises(CozeAPIError) as other:
        bound.workflows.retrieve(workflow_id=setup["answerer"])
    assert other.value.code == 4200
    with pytest.raises(CozeAPIError) as run_other:
        bound.workflows.runs.create(workflow_id=setup["answerer"], parameters={"q": "?"})
    assert run_other.value.code == 4200
    # A reader (workflow:read) reads the catalogue but runs nothing; a chat-only key reads nothing.
    reader = tenant.coze(tenant.post("/api/v1/api-keys", {"name": "reader", "scopes": ["workflow:read"]})["token"])
    assert {item.workflow_id for item in reader.workflows.list()} == set(listed)
    assert reader.workflows.retrieve(workflow_id=setup["answerer"]).workflow_detail.workflow_name == "Answerer"
    with pytest.raises(CozeAPIError) as not_a_runner:
        reader.workflows.runs.create(workflow_id=setup["answerer"], parameters={"q": "?"})
    assert not_a_runner.value.code == 4101
    chatter = tenant.coze(tenant.post("/api/v1/api-keys", {"name": "chatter", "scopes": ["agent:run"]})["token"])
    with pytest.raises(CozeAPIError) as not_a_reader:
        chatter.workflows.retrieve(workflow_id=setup["answerer"])
    assert not_a_reader.value.code == 4101


def test_workflows_chat_streams_a_chatflow_s_answer(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Par", "is."], usage=(20, 3)))
    events = list(tenant.coze().workflows.chat.stream(
        workflow_id=setup["chatflow"], additional_messages=[Message.build_user_question_text("Capital of France?")]))
    kinds = [event.event for event in events]
    # done ends cozepy's iteration (its handler returns None for it).
    assert kinds == [ChatEventType.CONVERSATION_CHAT_CREATED, ChatEventType.CONVERSATION_CHAT_IN_PROGRESS,
                     ChatEventType.CONVERSATION_MESSAGE_DELTA, ChatEventType.CONVERSATION_MESSAGE_COMPLETED,
                     ChatEventType.CONVERSATION_CHAT_COMPLETED]
    assert events[2].message is not None and events[2].message.content == "Sure: Paris."
    completed = events[4].chat
    assert completed is not None and completed.usage is not None and completed.usage.token_count == 23
    run = tenant.http.get(f"/api/v1/workflow-runs/{completed.id}", headers=tenant.headers).json()["data"]
    assert run["status"] == "succeeded" and run["chat"]["query"] == "Capital of France?"
    # A workflow that is no chatflow is refused before any event.
    with pytest.raises(CozeAPIError) as not_chatflow:
        list(tenant.coze().workflows.chat.stream(workflow_id=setup["answerer"],
                                                 additional_messages=[Message.build_user_question_text("Hi")]))
    assert not_chatflow.value.code == 4000


def test_a_chatflow_chat_paused_for_input_fails_saying_where_to_answer(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    chatflow = tenant.published("Asking flow", ASKING_CHATFLOW)
    events = list(tenant.coze().workflows.chat.stream(
        workflow_id=chatflow, additional_messages=[Message.build_user_question_text("Moths")]))
    # Not left in progress: the chat fails, naming the pause and where it is answered.
    assert [event.event for event in events] == [ChatEventType.CONVERSATION_CHAT_CREATED,
                                                 ChatEventType.CONVERSATION_CHAT_IN_PROGRESS,
                                                 ChatEventType.CONVERSATION_CHAT_FAILED]
    failed = events[2].chat
    assert failed is not None and failed.last_error is not None and failed.last_error.code == 4000
    assert f"/api/v1/workflow-runs/{failed.id}/resume" in failed.last_error.msg
    # That answer goes on with the run.
    answered = tenant.http.post(f"/api/v1/workflow-runs/{failed.id}/resume", headers=tenant.headers,
                                json={"node_id": "ask", "answer": {"note": "fine"}})
    assert answered.status_code in (200, 202), answered.text


def test_errors_are_coze_s_codes(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    with pytest.raises(CozeAPIError) as bad_token:
        tenant.coze("pat_not_a_real_token").workflows.runs.create(workflow_id=setup["answerer"], parameters={})
    assert bad_token.value.code == 4100 and bad_token.value.logid
    for unknown in ("no-such-workflow", "00000000-0000-4000-8000-000000000000", setup["strangers"]):
        with pytest.raises(CozeAPIError) as missing:
            tenant.coze().workflows.runs.create(workflow_id=unknown, parameters={"q": "?"})
        assert missing.value.code == 4200, unknown
        with pytest.raises(CozeAPIError) as missing_stream:
            list(tenant.coze().workflows.runs.stream(workflow_id=unknown, parameters={"q": "?"}))
        assert missing_stream.value.code == 4200
        with pytest.raises(CozeAPIError) as missing_info:
            tenant.coze().workflows.retrieve(workflow_id=unknown)
        assert missing_info.value.code == 4200
    with pytest.raises(CozeAPIError) as bad_inputs:
        tenant.coze().workflows.runs.create(workflow_id=setup["answerer"], parameters={})
    assert bad_inputs.value.code == 4000 and "q" in (bad_inputs.value.msg or "")
