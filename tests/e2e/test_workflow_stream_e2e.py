"""Streamed workflow runs through the whole local runtime over HTTP, with an SSE client
(docs/adr/0035-workflow-run-streaming.md): ``POST …/runs`` with ``"mode": "stream"`` answers the
run's events in order, an LLM node's text as ``node.delta``; a dropped stream resumes with
``Last-Event-ID`` losing and repeating nothing; a client that leaves does not stop the run; a
finished run replays whole; other tenants and keys bound elsewhere see nothing. The model is a
local OpenAI-protocol server, scripted per test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from tests.e2e.conftest import RunningRuntime, start_runtime
from tests.support.fake_openai import ChatScript, FakeOpenAI

HEARTBEAT_S = 1


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    # A short heartbeat, so that a quiet stream shows one within the test.
    running = start_runtime(tmp_path_factory.mktemp("e2e-stream") / "state",
                            WORKFLOW_STREAM_HEARTBEAT_S=str(HEARTBEAT_S))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


class Client:
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        self.http = httpx.Client(base_url=runtime.url, timeout=60)
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        created = self.http.post("/api/v1/tenants", json={"name": name}, headers=admin)
        assert created.status_code == 201, created.text
        self.headers = {"Authorization": f"Bearer {created.json()['data']['owner_token']}"}
        self.call("POST", "/api/v1/models", 201, json={
            "name": "scripted", "protocol": "openai", "provider_model": "gpt-scripted", "base_url": fake.base_url,
            "api_key": "sk-e2e-" + "x" * 24, "test": False})
        self.call("PUT", "/api/v1/models/defaults", 200, json={"chat_model": "scripted"})

    def call(self, method: str, path: str, expect: int, *, headers: dict[str, str] | None = None,
             **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=headers or self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()["data"] if response.content else None

    def published(self, name: str) -> str:
        """start(q) -> llm (the tenant's default model) -> end(answer)."""
        document = {"nodes": [
            {"id": "start", "type": "start", "config": {"variables": [{"variable": "q", "required": True}]}},
            {"id": "llm", "type": "llm", "config": {"prompt_template": [{"role": "user", "text": "{{#start.q#}}"}]}},
            {"id": "end", "type": "end", "config": {"outputs": [
                {"variable": "answer", "value_selector": ["llm", "text"]}]}}],
            "edges": [{"source": "start", "target": "llm"}, {"source": "llm", "target": "end"}]}
        workflow = self.call("POST", "/api/v1/workflows", 201, json={"name": name, "document": document})
        self.call("POST", f"/api/v1/workflows/{workflow['id']}/publish", 201, json={})
        return str(workflow["id"])

    def events(self, method: str, path: str, *, json: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None, stop_after: int | None = None,
               heartbeats: list[ServerSentEvent] | None = None) -> tuple[list[ServerSentEvent], httpx.Response]:
        """Read an SSE answer (heartbeats apart); ``stop_after``: drop the connection then."""
        seen: list[ServerSentEvent] = []
        with connect_sse(self.http, method, path, json=json, headers={**self.headers, **(headers or {})}) as source:
            assert source.response.status_code == 200, source.response.read()
            for event in source.iter_sse():
                if event.event == "heartbeat":
                    if heartbeats is not None:
                        heartbeats.append(event)
                    continue
                seen.append(event)
                if stop_after is not None and len(seen) == stop_after:
                    break
        return seen, source.response

    def wait(self, run_id: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            run: dict[str, Any] = self.call("GET", f"/api/v1/workflow-runs/{run_id}", 200)
            if run["status"] not in ("pending", "running"):
                return run
            assert time.monotonic() < deadline, run
            time.sleep(0.2)


@pytest.fixture(scope="module")
def client(runtime: RunningRuntime, fake: FakeOpenAI) -> Client:
    return Client(runtime, fake, "e2e-workflow-stream")


@pytest.fixture(scope="module")
def workflow(client: Client) -> str:
    return client.published("streamed")


def _ids(events: list[ServerSentEvent]) -> list[tuple[int, int]]:
    return [(int(ms), int(seq)) for ms, seq in (event.id.split("-") for event in events)]


def test_a_streamed_run_sends_its_events_in_order_with_the_model_s_text(client: Client, fake: FakeOpenAI,
                                                                        workflow: str) -> None:
    fake.reset()
    # The model says nothing for a while: the stream carries a heartbeat meanwhile.
    fake.enqueue(ChatScript(text=["Par", "is", " is", " the capital."], usage=(20, 4),
                            first_byte_delay_s=HEARTBEAT_S * 2.5))
    heartbeats: list[ServerSentEvent] = []
    events, response = client.events("POST", f"/api/v1/workflows/{workflow}/runs",
                                      json={"inputs": {"q": "Capital of France?"}, "mode": "stream"},
                                      heartbeats=heartbeats)
    kinds = [(event.event, event.json().get("node_id")) for event in events]
    assert kinds == [("workflow.started", None),
                     ("node.started", "start"), ("node.finished", "start"),
                     ("node.started", "llm"), *[("node.delta", "llm")] * 4, ("node.finished", "llm"),
                     ("node.started", "end"), ("node.finished", "end"),
                     ("workflow.finished", None), ("done", None)]
    ids = _ids(events)
    assert ids == sorted(ids) and len(set(ids)) == len(ids), "stream ids, increasing"
    run_id = events[0].json()["run_id"]
    assert response.headers["Location"] == f"/api/v1/workflow-runs/{run_id}"
    assert "".join(e.json()["text"] for e in events if e.event == "node.delta") == "Paris is the capital."
    llm = next(e.json() for e in events if e.event == "node.finished" and e.json()["node_id"] == "llm")
    assert llm["status"] == "succeeded" and llm["tokens"] == 24 and llm["elapsed_ms"] >= HEARTBEAT_S * 2000
    assert llm["outputs"]["text"] == "Paris is the capital." and llm["finished_at"]
    finished = events[-2].json()
    assert finished == {"status": "succeeded", "outputs": {"answer": "Paris is the capital."},
                        "outputs_truncated": [], "error": None}
    assert events[-1].json() == {"status": "succeeded"}
    # A heartbeat carries no id: the client's last id stays an event's (SSE keeps the last one seen).
    assert heartbeats and {h.id for h in heartbeats} <= {e.id for e in events} | {""}
    run = client.wait(run_id)
    assert run["status"] == "succeeded" and run["mode"] == "stream"
    assert run["outputs"] == {"answer": "Paris is the capital."}


def test_a_dropped_stream_resumes_with_last_event_id_losing_and_repeating_nothing(client: Client, fake: FakeOpenAI,
                                                                                 workflow: str) -> None:
    fake.reset()
    fake.enqueue(ChatScript(text=[f"part{n} " for n in range(30)], chunk_delay_s=0.03))
    first, _ = client.events("POST", f"/api/v1/workflows/{workflow}/runs",
                             json={"inputs": {"q": "Count"}, "mode": "stream"}, stop_after=6)
    assert first[-1].event == "node.delta", "dropped in the middle of the model's text"
    run_id = first[0].json()["run_id"]
    rest, _ = client.events("GET", f"/api/v1/workflow-runs/{run_id}/events",
                            headers={"Last-Event-ID": first[-1].id})
    assert rest[-1].event == "done" and rest[0].id != first[-1].id
    everything, _ = client.events("GET", f"/api/v1/workflow-runs/{run_id}/events")
    assert [e.id for e in first] + [e.id for e in rest] == [e.id for e in everything]
    text = "".join(e.json()["text"] for e in [*first, *rest] if e.event == "node.delta")
    assert text == "".join(f"part{n} " for n in range(30))
    # Resuming again from the middle gives the same tail; the query parameter works as the header.
    middle = everything[len(everything) // 2]
    again, _ = client.events("GET", f"/api/v1/workflow-runs/{run_id}/events?last_event_id={middle.id}")
    assert [e.id for e in again] == [e.id for e in everything[len(everything) // 2 + 1:]]


def test_a_client_that_leaves_does_not_stop_the_run(client: Client, fake: FakeOpenAI, workflow: str) -> None:
    fake.reset()
    fake.enqueue(ChatScript(text=[f"slow{n} " for n in range(40)], chunk_delay_s=0.05))
    first, _ = client.events("POST", f"/api/v1/workflows/{workflow}/runs",
                             json={"inputs": {"q": "Take your time"}, "mode": "stream"}, stop_after=1)
    run_id = first[0].json()["run_id"]
    # Gone after workflow.started: the run is still going (the model needs two seconds).
    assert client.call("GET", f"/api/v1/workflow-runs/{run_id}", 200)["status"] == "running"
    run = client.wait(run_id)
    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"answer": "".join(f"slow{n} " for n in range(40))}
    assert [node["node_id"] for node in run["nodes"]] == ["start", "llm", "end"]


def test_a_finished_run_replays_whole_and_ends_with_done(client: Client, fake: FakeOpenAI, workflow: str) -> None:
    fake.reset()
    run = client.call("POST", f"/api/v1/workflows/{workflow}/runs", 200, json={"inputs": {"q": "hi"}})
    assert run["status"] == "succeeded" and run["mode"] == "sync"
    events, _ = client.events("GET", f"/api/v1/workflow-runs/{run['id']}/events")
    assert events[0].event == "workflow.started" and [e.event for e in events[-2:]] == ["workflow.finished", "done"]
    assert [e.json()["node_id"] for e in events if e.event == "node.finished"] == ["start", "llm", "end"]
    # After its last event: a new done at once (an EventSource would otherwise reconnect for ever).
    began = time.monotonic()
    after, _ = client.events("GET", f"/api/v1/workflow-runs/{run['id']}/events",
                             headers={"Last-Event-ID": events[-1].id})
    assert [e.event for e in after] == ["done"] and after[0].id != events[-1].id
    assert time.monotonic() - began < HEARTBEAT_S * 2
    # The other modes answer through the same path as before: async 202 with Location, the list.
    accepted = client.http.post(f"/api/v1/workflows/{workflow}/runs", headers=client.headers,
                                json={"inputs": {"q": "later"}, "mode": "async"})
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["Location"] == f"/api/v1/workflow-runs/{accepted.json()['data']['id']}"
    client.wait(accepted.json()["data"]["id"])
    listed = client.http.get(f"/api/v1/workflows/{workflow}/runs?limit=2&sort=-created_at", headers=client.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["pagination"]["limit"] == 2 and len(listed.json()["data"]) == 2
    assert listed.json()["data"][0]["id"] == accepted.json()["data"]["id"]
    bad = client.http.get(f"/api/v1/workflows/{workflow}/runs?sort=name", headers=client.headers)
    assert bad.status_code == 422 and bad.json()["details"]["fields"][0]["field"].startswith("query.sort")


def test_other_tenants_bound_keys_and_bad_positions(runtime: RunningRuntime, client: Client, fake: FakeOpenAI,
                                                    workflow: str) -> None:
    fake.reset()
    run = client.call("POST", f"/api/v1/workflows/{workflow}/runs", 200, json={"inputs": {"q": "mine"}})
    events = f"/api/v1/workflow-runs/{run['id']}/events"
    stranger = Client(runtime, fake, "e2e-workflow-stream-stranger")
    assert stranger.http.get(events, headers=stranger.headers).json()["code"] == "workflow_run_not_found"
    answer = stranger.http.post(f"/api/v1/workflows/{workflow}/runs", headers=stranger.headers,
                                json={"inputs": {"q": "x"}, "mode": "stream"})
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("application/json")
    assert stranger.http.get(f"/api/v1/workflows/{workflow}/runs", headers=stranger.headers).status_code == 404
    assert client.http.get("/api/v1/workflow-runs/not-a-run/events", headers=client.headers).status_code == 404
    assert client.http.get(events).status_code == 401
    invalid = client.http.get(events, headers={**client.headers, "Last-Event-ID": "yesterday"})
    assert invalid.status_code == 422 and invalid.json()["code"] == "workflow_run_event_id_invalid"
    assert invalid.json()["details"]["fields"][0]["field"] == "headers.last-event-id"
    # Sent as the query parameter, the error names the query parameter.
    queried = client.http.get(f"{events}?last_event_id=yesterday", headers=client.headers)
    assert queried.status_code == 422 and queried.json()["details"]["fields"][0]["field"] == "query.last_event_id"
    wrong_mode = client.http.post(f"/api/v1/workflows/{workflow}/runs", headers=client.headers,
                                  json={"inputs": {"q": "x"}, "mode": "live"})
    assert wrong_mode.status_code == 422 and wrong_mode.json()["details"]["fields"][0]["field"] == "body.mode"
    missing = client.http.post(f"/api/v1/workflows/{workflow}/runs", headers=client.headers,
                               json={"mode": "stream"})
    assert missing.status_code == 422 and missing.json()["details"]["fields"][0]["field"] == "inputs.q"
    # A key bound to another workflow: this run is 404, starting this workflow 403.
    other = client.published("other")
    key = client.call("POST", "/api/v1/api-keys", 201, json={
        "name": "other app", "resource_type": "workflow", "resource_id": other})
    bound = {"Authorization": f"Bearer {key['token']}"}
    assert client.http.get(events, headers=bound).status_code == 404
    refused = client.http.post(f"/api/v1/workflows/{workflow}/runs", headers=bound,
                               json={"inputs": {"q": "x"}, "mode": "stream"})
    assert refused.status_code == 403 and refused.json()["code"] == "auth_workflow_not_allowed"
    # Its own workflow streams.
    own, _ = client.events("POST", f"/api/v1/workflows/{other}/runs", headers=bound,
                           json={"inputs": {"q": "x"}, "mode": "stream"})
    assert own[-1].event == "done" and own[-1].json() == {"status": "succeeded"}


def test_a_paused_run_streams_its_form_then_its_resumption(client: Client) -> None:
    document = {"nodes": [
        {"id": "start", "type": "start", "config": {"variables": []}},
        {"id": "review", "type": "human_input", "config": {
            "form_content": "Ship it?", "fields": [{"name": "ok", "type": "boolean", "required": True}]}},
        {"id": "end", "type": "end", "config": {"outputs": [{"variable": "ok", "value_selector": ["review", "ok"]}]}}],
        "edges": [{"source": "start", "target": "review"}, {"source": "review", "target": "end"}]}
    workflow = client.call("POST", "/api/v1/workflows", 201, json={"name": "review", "document": document})["id"]
    client.call("POST", f"/api/v1/workflows/{workflow}/publish", 201, json={})
    first, _ = client.events("POST", f"/api/v1/workflows/{workflow}/runs", json={"mode": "stream"}, stop_after=5)
    assert [e.event for e in first][-2:] == ["node.started", "workflow.paused"], [e.event for e in first]
    paused = first[-1].json()
    assert paused["node_id"] == "review" and paused["form"]["content"] == "Ship it?"
    assert [f["name"] for f in paused["form"]["fields"]] == ["ok"] and paused["expires_at"] is None
    run_id = first[0].json()["run_id"]
    client.call("POST", f"/api/v1/workflow-runs/{run_id}/resume", 202, json={"node_id": "review",
                                                                            "answer": {"ok": True}})
    rest, _ = client.events("GET", f"/api/v1/workflow-runs/{run_id}/events", headers={"Last-Event-ID": first[-1].id})
    assert [e.event for e in rest][:2] == ["workflow.resumed", "node.finished"]
    assert rest[0].json() == {"node_id": "review", "timed_out": False}
    assert rest[1].json()["outputs"] == {"ok": True} and rest[1].json()["finished_at"]
    assert [e.event for e in rest][-2:] == ["workflow.finished", "done"] and rest[-2].json()["outputs"] == {"ok": True}
