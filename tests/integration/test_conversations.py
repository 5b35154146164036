"""Conversations and their messages through the API: starting one with an agent the caller may
use (published, built-in, draft; inputs checked), listing per end user and agent, renaming with
optimistic locking, soft delete, messages in both orders, feedback on answers, tenant and end
user isolation, and API keys bound to one agent. Turns are written the way the chat engine
writes them (``insert_turn`` then ``finish_message``, each in its own transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from shared.conversations import repository as repo
from shared.db.database import get_database
from tests.support.api import ApiClient

Sql = Callable[..., list[tuple[Any, ...]]]
CONVERSATIONS = "/api/v1/conversations"


class Api(ApiClient):
    def __init__(self, client: TestClient, tenant: dict[str, Any], token: str | None = None) -> None:
        super().__init__(client, token or tenant["owner_token"])
        self.tenant = tenant
        self.tenant_id = uuid.UUID(tenant["tenant"]["id"])
        self.owner_user = tenant["owner"]["user_id"]

    def agent(self, name: str, publish: bool = True, **config: Any) -> dict[str, Any]:
        agent: dict[str, Any] = self.data("POST", "/api/v1/agents", {"name": name, "config": config}, 201)
        if publish:
            self.data("POST", f"/api/v1/agents/{agent['id']}/publish", {}, 201)
        return agent

    def conversation(self, agent_id: str, **fields: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.data("POST", CONVERSATIONS, {"agent_id": agent_id, **fields}, 201)
        return data

    def ids(self, **params: Any) -> list[str]:
        return [c["id"] for c in self.data("GET", CONVERSATIONS, **params)]


@pytest.fixture
def api(client: TestClient, new_tenant: Callable[..., dict[str, Any]]) -> Api:
    return Api(client, new_tenant())


@pytest.fixture
def other(client: TestClient, new_tenant: Callable[..., dict[str, Any]]) -> Api:
    return Api(client, new_tenant())


def turn(tenant_id: uuid.UUID, conversation_id: str, question: str, answer: str | None = "",
         **finish: Any) -> tuple[str, str]:
    """One turn as the chat engine writes it: the question and a running answer, then (unless
    ``answer`` is None) the answer finished. Returns (question id, answer id)."""
    db = get_database()
    question_id, answer_id = uuid.uuid4(), uuid.uuid4()
    with db.transaction(tenant_id) as conn:
        row = conn.execute("SELECT end_user FROM conversations WHERE id = %s", (conversation_id,)).fetchone()
        assert row is not None
        conversation = repo.get_conversation(conn, tenant_id, uuid.UUID(conversation_id), row[0], lock=True)
        assert conversation is not None
        repo.insert_turn(conn, conversation, question=question, user_message_id=question_id, answer_id=answer_id,
                         agent_version=None)
    if answer is not None:
        with db.transaction(tenant_id) as conn:
            finished = repo.finish_message(conn, tenant_id, answer_id,
                                           {"content": answer, "status": "completed", **finish})
            assert finished is not None
    return str(question_id), str(answer_id)


def count(admin_sql: Sql, tenant: Api) -> int:
    return int(admin_sql("SELECT count(*) FROM conversations WHERE tenant_id = %s", (tenant.tenant_id,))[0][0])


# Starting a conversation ----------------------------------------------------------------------
def test_create_with_published_builtin_and_draft_agents(api: Api, admin_sql: Sql) -> None:
    agent = api.agent("support")
    created = api.conversation(agent["id"], name="Refunds", user="alice")
    assert created["agent_id"] == agent["id"] and created["user"] == "alice" and created["name"] == "Refunds"
    assert created["draft"] is False and created["inputs"] == {} and created["message_count"] == 0
    assert created["version"] == 1 and created["last_message_at"] is None
    assert api.data("GET", f"{CONVERSATIONS}/{created['id']}", user="alice") == created
    stored = admin_sql("SELECT tenant_id, end_user, created_by FROM conversations WHERE id = %s", (created["id"],))
    assert stored == [(api.tenant_id, "alice", uuid.UUID(api.owner_user))]

    # Without a user, the conversation is the token owner's own.
    mine = api.conversation(agent["id"])
    assert mine["user"] == f"member:{api.owner_user}" and mine["name"] == ""

    quick = api.data("GET", "/api/v1/agents/builtin-quick-answer")
    builtin = api.conversation("builtin-quick-answer")
    assert builtin["agent_id"] == quick["id"]
    smart = api.conversation("builtin-smart-reasoning")  # accepted here; the chat turn decides
    assert smart["agent_id"] == api.data("GET", "/api/v1/agents/builtin-smart-reasoning")["id"]

    unpublished = api.agent("work in progress", publish=False)
    api.error("POST", CONVERSATIONS, {"agent_id": unpublished["id"]}, 409, "agent_not_published")
    debug = api.conversation(unpublished["id"], draft=True)
    assert debug["draft"] is True and debug["agent_id"] == unpublished["id"]
    assert count(admin_sql, api) == 5


def test_create_refuses_unseen_agents_and_missing_inputs(api: Api, other: Api, admin_sql: Sql) -> None:
    foreign = other.agent("foreign")
    api.error("POST", CONVERSATIONS, {"agent_id": foreign["id"]}, 404, "agent_not_found")
    api.error("POST", CONVERSATIONS, {"agent_id": foreign["id"], "draft": True}, 404, "agent_not_found")
    api.error("POST", CONVERSATIONS, {"agent_id": "not-an-agent"}, 404, "agent_not_found")
    api.error("POST", CONVERSATIONS, {"agent_id": "builtin-nothing"}, 404, "agent_not_found")
    gone = api.agent("gone")
    api.call("DELETE", f"/api/v1/agents/{gone['id']}", expect=204)
    api.error("POST", CONVERSATIONS, {"agent_id": gone["id"]}, 404, "agent_not_found")

    templated = api.agent("templated", system_prompt="You support {{product}} users in {{region}}.",
                          variables=[{"name": "product", "required": True},
                                     {"name": "region", "default": "Europe"}])
    missing = api.error("POST", CONVERSATIONS, {"agent_id": templated["id"], "inputs": {"region": "Asia"}},
                        422, "agent_input_invalid")
    assert [f["field"] for f in missing["details"]["fields"]] == ["inputs.product"]
    wrong_type = api.error("POST", CONVERSATIONS, {"agent_id": templated["id"], "inputs": {"product": ["x"]}},
                           422, "agent_input_invalid")
    assert wrong_type["details"]["fields"][0]["type"] == "type_error"
    for body, field in (({"agent_id": templated["id"], "user": "member:someone"}, "body.user"),
                        ({"agent_id": templated["id"], "colour": "red"}, "body.colour"),
                        ({"agent_id": templated["id"], "name": "n" * 256}, "body.name"),
                        ({}, "body.agent_id")):
        payload = api.error("POST", CONVERSATIONS, body, 422, "biz_validation_failed")
        assert field in [f["field"] for f in payload["details"]["fields"]], payload
    assert count(admin_sql, api) == 0

    created = api.conversation(templated["id"], inputs={"product": "Stratus"})
    assert created["inputs"] == {"product": "Stratus"}
    assert count(admin_sql, api) == 1 and count(admin_sql, other) == 0


# Listing ----------------------------------------------------------------------------------------
def test_list_is_scoped_by_end_user_agent_and_tenant(api: Api, other: Api) -> None:
    first, second = api.agent("first"), api.agent("second")
    a1 = api.conversation(first["id"], user="alice", name="b")
    a2 = api.conversation(second["id"], user="alice", name="c")
    a3 = api.conversation(first["id"], user="alice", name="a")
    b1 = api.conversation(first["id"], user="bob")
    own = api.conversation(first["id"])
    theirs = other.conversation(other.agent("theirs")["id"], user="alice")

    assert api.ids(user="alice") == [a3["id"], a2["id"], a1["id"]]  # most recently active first
    assert api.ids(user="bob") == [b1["id"]]
    assert api.ids() == [own["id"]]
    assert api.ids(user="carol") == []
    assert other.ids(user="alice") == [theirs["id"]]

    assert api.ids(user="alice", agent_id=first["id"]) == [a3["id"], a1["id"]]
    assert api.ids(user="alice", agent_id=str(uuid.uuid4())) == []
    assert api.ids(user="alice", agent_id="builtin-quick-answer") == []
    quick = api.conversation("builtin-quick-answer", user="alice")
    assert api.ids(user="alice", agent_id="builtin-quick-answer") == [quick["id"]]
    api.error("GET", CONVERSATIONS, None, 422, "biz_validation_failed", agent_id="nonsense")

    # A turn (or a rename) makes a conversation the most recent.
    turn(api.tenant_id, a1["id"], "hello?", "hi")
    assert api.ids(user="alice")[0] == a1["id"]
    assert api.ids(user="alice", sort="name") == [quick["id"], a3["id"], a1["id"], a2["id"]]  # "" first
    assert api.ids(user="alice", sort="created_at") == [a1["id"], a2["id"], a3["id"], quick["id"]]
    api.error("GET", CONVERSATIONS, None, 422, "biz_validation_failed", sort="end_user")
    api.error("GET", CONVERSATIONS, None, 422, "biz_validation_failed", user="member:" + api.owner_user)

    page = api.call("GET", CONVERSATIONS, expect=200, user="alice", limit=3, page=2, sort="-name").json()
    assert [c["id"] for c in page["data"]] == [quick["id"]]
    assert page["pagination"] == {"page": 2, "limit": 3, "total": 4, "total_pages": 2, "has_next": False,
                                  "has_prev": True}


# Reading, renaming, deleting ----------------------------------------------------------------------
def test_rename_with_optimistic_locking(api: Api) -> None:
    conversation = api.conversation(api.agent("renamer")["id"], user="alice")
    path = f"{CONVERSATIONS}/{conversation['id']}"
    renamed = api.data("PATCH", path, {"name": "Shipping", "user": "alice", "version": 1})
    assert renamed["name"] == "Shipping" and renamed["version"] == 2
    assert renamed["updated_at"] >= conversation["updated_at"]
    stale = api.error("PATCH", path, {"name": "Late", "user": "alice", "version": 1}, 409,
                      "conversation_version_conflict")
    assert stale["details"]["version"] == 2
    assert api.data("GET", path, user="alice")["name"] == "Shipping"
    # Without a version the last write wins.
    assert api.data("PATCH", path, {"name": "Returns", "user": "alice"})["version"] == 3
    # A turn does not bump the version: a rename read before it still applies.
    turn(api.tenant_id, conversation["id"], "where is my parcel?", "on its way")
    after = api.data("PATCH", path, {"name": "Parcels", "user": "alice", "version": 3})
    assert after["version"] == 4 and after["message_count"] == 2 and after["name"] == "Parcels"

    api.error("PATCH", path, {"name": "", "user": "alice"}, 422, "biz_validation_failed")
    api.error("PATCH", path, {"name": "Bob's now", "user": "bob", "version": 4}, 404, "conversation_not_found")
    api.error("PATCH", path, {"name": "Mine now", "version": 4}, 404, "conversation_not_found")
    api.error("GET", path, None, 404, "conversation_not_found", user="bob")
    api.error("GET", path, None, 404, "conversation_not_found")  # the owner's own are another end user
    assert api.data("GET", path, user="alice")["name"] == "Parcels"


def test_delete_then_404_everywhere_and_a_running_turn_finishes(api: Api, admin_sql: Sql) -> None:
    conversation = api.conversation(api.agent("deleter")["id"], user="alice")
    path = f"{CONVERSATIONS}/{conversation['id']}"
    _, answer_id = turn(api.tenant_id, conversation["id"], "still thinking?", None)

    api.error("DELETE", path, None, 404, "conversation_not_found", user="bob")
    assert api.data("GET", path, user="alice")["message_count"] == 2
    api.call("DELETE", path, expect=204, user="alice")
    assert admin_sql("SELECT deleted_at IS NOT NULL FROM conversations WHERE id = %s",
                     (conversation["id"],)) == [(True,)]
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"name": "x", "user": "alice"}),
                                 ("DELETE", "", None), ("GET", "/messages", None),
                                 ("POST", f"/messages/{answer_id}/feedback", {"rating": "like", "user": "alice"})):
        api.error(method, path + suffix, body, 404, "conversation_not_found", user="alice")
    assert api.ids(user="alice") == []

    # The turn that was answering is left to finish; its conversation stays gone.
    with get_database().transaction(api.tenant_id) as conn:
        finished = repo.finish_message(conn, api.tenant_id, uuid.UUID(answer_id),
                                       {"content": "done", "status": "completed"})
        assert finished is not None and finished["status"] == "completed"
        assert repo.get_message(conn, api.tenant_id, uuid.UUID(answer_id)) is None
    api.error("GET", path, None, 404, "conversation_not_found", user="alice")
    api.error("GET", f"{CONVERSATIONS}/not-an-id", None, 404, "conversation_not_found")
    api.error("DELETE", f"{CONVERSATIONS}/{uuid.uuid4()}", None, 404, "conversation_not_found")


def test_another_tenant_sees_nothing_and_changes_nothing(api: Api, other: Api, admin_sql: Sql) -> None:
    conversation = api.conversation(api.agent("private")["id"], user="alice", name="secret")
    _, answer_id = turn(api.tenant_id, conversation["id"], "q", "a")
    path = f"{CONVERSATIONS}/{conversation['id']}"
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"name": "x", "user": "alice", "version": 1}),
                                 ("DELETE", "", None), ("GET", "/messages", None),
                                 ("POST", f"/messages/{answer_id}/feedback", {"rating": "dislike",
                                                                              "user": "alice"})):
        other.error(method, path + suffix, body, 404, "conversation_not_found", user="alice")
    assert admin_sql("SELECT name, version, deleted_at FROM conversations WHERE id = %s",
                     (conversation["id"],)) == [("secret", 1, None)]
    assert admin_sql("SELECT feedback_rating FROM messages WHERE id = %s", (answer_id,)) == [(None,)]


# Messages -----------------------------------------------------------------------------------------
def test_messages_in_both_orders_with_pagination(api: Api) -> None:
    conversation = api.conversation(api.agent("talker")["id"], user="alice")
    path = f"{CONVERSATIONS}/{conversation['id']}/messages"
    segment = {"index": 1, "segment_id": str(uuid.uuid4()), "knowledge_base_id": str(uuid.uuid4()),
               "document_id": str(uuid.uuid4()), "document_name": "faq.md", "position": 3, "page": None,
               "score": 0.82, "score_type": "cosine", "content": "Refunds take 5 days."}
    q1, a1 = turn(api.tenant_id, conversation["id"], "  How long do\nrefunds take?  ", "Five days [1].",
                  refs=[segment], model="gpt-4o-mini", stop_reason="end_turn",
                  usage={"input_tokens": 12, "output_tokens": 4, "total_tokens": 16, "estimated": False})
    q2, a2 = turn(api.tenant_id, conversation["id"], "And exchanges?", "Ten days.")
    q3, a3 = turn(api.tenant_id, conversation["id"], "Thanks", None)

    after = api.data("GET", f"{CONVERSATIONS}/{conversation['id']}", user="alice")
    assert after["message_count"] == 6 and after["last_message_at"] is not None
    assert after["name"] == "How long do refunds take?"  # named after the first question

    newest = api.data("GET", path, user="alice")
    assert [m["id"] for m in newest] == [a3, q3, a2, q2, a1, q1]
    assert [m["position"] for m in newest] == [6, 5, 4, 3, 2, 1]
    oldest = api.data("GET", path, user="alice", order="asc")
    assert [m["id"] for m in oldest] == [q1, a1, q2, a2, q3, a3]

    question, answer = oldest[0], oldest[1]
    assert question["role"] == "user" and question["status"] == "completed" and question["reply_to"] is None
    assert question["content"] == "  How long do\nrefunds take?  " and question["references"] == []
    assert answer["role"] == "assistant" and answer["reply_to"] == q1 and answer["content"] == "Five days [1]."
    assert answer["references"] == [segment] and answer["model"] == "gpt-4o-mini"
    assert answer["usage"]["total_tokens"] == 16 and answer["stop_reason"] == "end_turn"
    assert answer["finished_at"] is not None and answer["feedback"] is None and answer["error"] is None
    assert answer["agent_id"] == conversation["agent_id"] and answer["conversation_id"] == conversation["id"]
    assert oldest[5]["status"] == "running" and oldest[5]["finished_at"] is None

    page = api.call("GET", path, expect=200, user="alice", limit=4, page=2).json()
    assert [m["id"] for m in page["data"]] == [a1, q1]
    assert page["pagination"] == {"page": 2, "limit": 4, "total": 6, "total_pages": 2, "has_next": False,
                                  "has_prev": True}
    page = api.call("GET", path, expect=200, user="alice", order="asc", limit=4).json()
    assert [m["id"] for m in page["data"]] == [q1, a1, q2, a2] and page["pagination"]["has_next"] is True
    beyond = api.call("GET", path, expect=200, user="alice", page=3, limit=4).json()
    assert beyond["data"] == [] and beyond["pagination"]["total"] == 6

    api.error("GET", path, None, 422, "biz_validation_failed", user="alice", order="newest")
    api.error("GET", path, None, 404, "conversation_not_found", user="bob")
    api.error("GET", f"{CONVERSATIONS}/x/messages", None, 404, "conversation_not_found", user="alice")
    empty = api.conversation(conversation["agent_id"], user="alice")
    assert api.data("GET", f"{CONVERSATIONS}/{empty['id']}/messages", user="alice") == []


def test_a_failed_turn_shows_its_error(api: Api) -> None:
    conversation = api.conversation(api.agent("failing")["id"], user="alice")
    _, answer_id = turn(api.tenant_id, conversation["id"], "q", None)
    with get_database().transaction(api.tenant_id) as conn:
        repo.finish_message(conn, api.tenant_id, uuid.UUID(answer_id),
                            {"status": "failed", "error_code": "model_unavailable", "error": "Provider down"})
    answer = api.data("GET", f"{CONVERSATIONS}/{conversation['id']}/messages", user="alice")[0]
    assert answer["status"] == "failed" and answer["error"] == {"code": "model_unavailable",
                                                                "message": "Provider down"}


# Feedback -----------------------------------------------------------------------------------------
def test_feedback_on_answers_only(api: Api, admin_sql: Sql) -> None:
    agent = api.agent("rated")
    conversation = api.conversation(agent["id"], user="alice")
    base = f"{CONVERSATIONS}/{conversation['id']}/messages"
    question_id, answer_id = turn(api.tenant_id, conversation["id"], "q1", "a1")
    _, running_id = turn(api.tenant_id, conversation["id"], "q2", None)

    liked = api.data("POST", f"{base}/{answer_id}/feedback", {"rating": "like", "user": "alice"})
    assert liked["id"] == answer_id and liked["feedback"]["rating"] == "like"
    assert liked["feedback"]["content"] == "" and liked["feedback"]["at"] is not None
    disliked = api.data("POST", f"{base}/{answer_id}/feedback",
                        {"rating": "dislike", "content": "Too short", "user": "alice"})
    assert disliked["feedback"]["rating"] == "dislike" and disliked["feedback"]["content"] == "Too short"
    listed = api.data("GET", base, user="alice", order="asc")
    assert listed[1]["feedback"] == disliked["feedback"]
    # Taking the rating back keeps a comment; with no comment either, no feedback is left.
    kept = api.data("POST", f"{base}/{answer_id}/feedback", {"rating": None, "content": "Meh", "user": "alice"})
    assert kept["feedback"]["rating"] is None and kept["feedback"]["content"] == "Meh"
    cleared = api.data("POST", f"{base}/{answer_id}/feedback", {"rating": None, "user": "alice"})
    assert cleared["feedback"] is None
    assert admin_sql("SELECT feedback_rating, feedback_content, feedback_at FROM messages WHERE id = %s",
                     (answer_id,)) == [(None, None, None)]

    api.error("POST", f"{base}/{question_id}/feedback", {"rating": "like", "user": "alice"}, 422,
              "message_feedback_invalid")
    running = api.error("POST", f"{base}/{running_id}/feedback", {"rating": "like", "user": "alice"}, 422,
                        "message_feedback_invalid")
    assert running["details"]["status"] == "running"
    # A failed answer has nothing to rate: a conflict with the message's state, not bad input.
    with get_database().transaction(api.tenant_id) as conn:
        repo.finish_message(conn, api.tenant_id, uuid.UUID(running_id),
                            {"status": "failed", "error_code": "model_unavailable", "error": "Provider down"})
    failed = api.error("POST", f"{base}/{running_id}/feedback", {"rating": "dislike", "user": "alice"}, 409,
                       "message_failed")
    assert failed["details"] == {"message_id": running_id, "status": "failed"}
    assert admin_sql("SELECT feedback_rating FROM messages WHERE id = %s", (running_id,)) == [(None,)]
    api.error("POST", f"{base}/{answer_id}/feedback", {"rating": "love", "user": "alice"}, 422,
              "biz_validation_failed")
    api.error("POST", f"{base}/{answer_id}/feedback", {"user": "alice"}, 422, "biz_validation_failed")
    api.error("POST", f"{base}/{answer_id}/feedback", {"rating": "like", "user": "bob"}, 404,
              "conversation_not_found")
    api.error("POST", f"{base}/{answer_id}/feedback", {"rating": "like"}, 404, "conversation_not_found")
    api.error("POST", f"{base}/not-an-id/feedback", {"rating": "like", "user": "alice"}, 404, "message_not_found")
    api.error("POST", f"{base}/{uuid.uuid4()}/feedback", {"rating": "like", "user": "alice"}, 404,
              "message_not_found")
    # A message of another conversation of the same end user is not this conversation's.
    elsewhere = api.conversation(agent["id"], user="alice")
    _, foreign_answer = turn(api.tenant_id, elsewhere["id"], "q", "a")
    api.error("POST", f"{base}/{foreign_answer}/feedback", {"rating": "like", "user": "alice"}, 404,
              "message_not_found")
    assert admin_sql("SELECT count(*) FROM messages WHERE tenant_id = %s AND feedback_at IS NOT NULL",
                     (api.tenant_id,)) == [(0,)]


# Tokens bound to one agent --------------------------------------------------------------------------
def test_a_key_bound_to_an_agent_sees_only_that_agent(api: Api, client: TestClient, admin_sql: Sql) -> None:
    mine, theirs = api.agent("bound"), api.agent("other")
    key = api.data("POST", "/api/v1/api-keys", {"name": "widget", "scopes": ["agent:run"],
                                                 "resource_type": "agent", "resource_id": mine["id"]}, 201)
    bound = Api(client, api.tenant, key["token"])

    for agent_id in (theirs["id"], "builtin-quick-answer", str(uuid.uuid4())):
        payload = bound.error("POST", CONVERSATIONS, {"agent_id": agent_id, "user": "alice"}, 403,
                              "auth_agent_not_allowed")
        assert payload["details"]["agent_id"] != mine["id"]
    assert count(admin_sql, api) == 0
    created = bound.conversation(mine["id"], user="alice")
    assert created["agent_id"] == mine["id"] and created["user"] == "alice"

    # The owner's conversations with both agents, for the same end users.
    owners_mine = api.conversation(mine["id"], user="alice")
    owners_theirs = api.conversation(theirs["id"], user="alice")
    _, answer_id = turn(api.tenant_id, owners_theirs["id"], "q", "a")
    assert bound.ids(user="alice") == [owners_mine["id"], created["id"]]
    assert bound.ids(user="alice", agent_id=mine["id"]) == [owners_mine["id"], created["id"]]
    bound.error("GET", CONVERSATIONS, None, 403, "auth_agent_not_allowed", user="alice", agent_id=theirs["id"])
    assert set(api.ids(user="alice")) == {created["id"], owners_mine["id"], owners_theirs["id"]}

    path = f"{CONVERSATIONS}/{owners_theirs['id']}"
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"name": "x", "user": "alice"}),
                                 ("DELETE", "", None), ("GET", "/messages", None),
                                 ("POST", f"/messages/{answer_id}/feedback", {"rating": "like", "user": "alice"})):
        bound.error(method, path + suffix, body, 404, "conversation_not_found", user="alice")
    assert api.data("GET", path, user="alice")["version"] == 1

    own_path = f"{CONVERSATIONS}/{owners_mine['id']}"
    assert bound.data("PATCH", own_path, {"name": "from the widget", "user": "alice"})["name"] == "from the widget"
    bound.call("DELETE", own_path, expect=204, user="alice")
    assert bound.ids(user="alice") == [created["id"]]


def test_viewers_cannot_run_agents(api: Api, client: TestClient) -> None:
    agent = api.agent("guarded")
    response = client.post("/api/v1/members", headers=api.headers,
                           json={"email": f"viewer-{uuid.uuid4().hex[:8]}@example.com", "role": "viewer",
                                 "issue_token": True})
    assert response.status_code == 201, response.text
    viewer = Api(client, api.tenant, response.json()["data"]["token"])
    viewer.error("POST", CONVERSATIONS, {"agent_id": agent["id"]}, 403, "auth_permission_denied")
    viewer.error("GET", CONVERSATIONS, None, 403, "auth_permission_denied")
    developer = client.post("/api/v1/members", headers=api.headers,
                            json={"email": f"dev-{uuid.uuid4().hex[:8]}@example.com", "role": "developer",
                                  "issue_token": True})
    dev = Api(client, api.tenant, developer.json()["data"]["token"])
    theirs = dev.conversation(agent["id"])
    assert theirs["user"] == f"member:{developer.json()['data']['user_id']}"
    assert api.ids() == [] and dev.ids() == [theirs["id"]]
