"""SQL for conversations and messages. Every query names the tenant (row-level security checks
it a second time) and, where an end user reads, the end user."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from shared.conversations.api import TOOL_OUTPUTS_EXPIRED, TOOL_OUTPUTS_EXPIRED_MESSAGE
from shared.db.paging import PageRequest
from shared.db.queries import Row, assignments, one, page_of, rows

Conn = Connection[Any]

CONVERSATION_COLUMNS = """id, tenant_id, agent_id, end_user, name, draft, inputs, message_count, last_message_at,
    created_by, created_at, updated_at, version, kept_out_of"""
MESSAGE_COLUMNS = """id, tenant_id, conversation_id, position, role, reply_to, content, status, agent_id,
    agent_version, refs, rewritten_query, model, stop_reason, usage, latency, context, error_code, error,
    feedback_rating, feedback_content, feedback_at, created_at, updated_at, finished_at, steps, required_action,
    action_expires_at"""
# Answers that count as history: finished, with something said.
_HISTORY_STATUSES = ("completed", "cancelled")
# Conversation names made from the first question.
NAME_FROM_QUESTION_CHARS = 60
CONVERSATION_SORTS = frozenset({"updated_at", "created_at", "name"})
MESSAGE_SORTS = frozenset({"position"})



# Conversations ------------------------------------------------------------------------------
def insert_conversation(conn: Conn, *, conversation_id: uuid.UUID, tenant_id: uuid.UUID, agent_id: uuid.UUID,
                        end_user: str, name: str, draft: bool, inputs: dict[str, Any],
                        created_by: uuid.UUID | None, kept_out_of: uuid.UUID | None = None) -> Row:
    row = one(conn, f"""INSERT INTO conversations (id, tenant_id, agent_id, end_user, name, draft, inputs, created_by,
                                                   kept_out_of)
                         VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {CONVERSATION_COLUMNS}""",
              (conversation_id, tenant_id, agent_id, end_user, name, draft, Jsonb(inputs), created_by, kept_out_of))
    assert row is not None
    return row


def get_conversation(conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID, end_user: str, *,
                     lock: bool = False) -> Row | None:
    """A live conversation of this end user (another user's is None, like a missing one)."""
    return one(conn, f"""SELECT {CONVERSATION_COLUMNS} FROM conversations
                          WHERE tenant_id = %s AND id = %s AND end_user = %s AND deleted_at IS NULL"""
                     + (" FOR UPDATE" if lock else ""), (tenant_id, conversation_id, end_user))


def find_conversation(conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> Row | None:
    """A live conversation of the tenant, whichever end user's (the caller checks who may see it)."""
    return one(conn, f"""SELECT {CONVERSATION_COLUMNS} FROM conversations
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (tenant_id, conversation_id))


def update_conversation(conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID, values: dict[str, Any],
                        expected_version: int | None = None) -> Row | None:
    """None when the conversation went away or (with ``expected_version``) changed."""
    from psycopg import sql

    clause, params = assignments(values)
    query = sql.SQL(f"""UPDATE conversations SET {{}}, updated_at = now(), version = version + 1
                        WHERE tenant_id = %(_tenant)s AND id = %(_id)s AND deleted_at IS NULL
                          AND (%(_version)s::integer IS NULL OR version = %(_version)s::integer)
                        RETURNING {CONVERSATION_COLUMNS}""").format(clause)
    return one(conn, query, {**params, "_tenant": tenant_id, "_id": conversation_id, "_version": expected_version})


def list_conversations(conn: Conn, tenant_id: uuid.UUID, end_user: str, agent_id: uuid.UUID | None,
                       page: PageRequest) -> tuple[list[Row], int]:
    """One page of the end user's live conversations, of one agent when ``agent_id`` is given."""
    where = """tenant_id = %(tenant)s AND end_user = %(user)s AND deleted_at IS NULL
               AND (%(agent)s::uuid IS NULL OR agent_id = %(agent)s::uuid)"""
    return page_of(conn, "conversations", CONVERSATION_COLUMNS, where,
                   {"tenant": tenant_id, "user": end_user, "agent": agent_id}, page)


def soft_delete_conversation(conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
    cur = conn.execute("""UPDATE conversations SET deleted_at = now(), updated_at = now(), version = version + 1
                          WHERE tenant_id = %s AND id = %s AND deleted_at IS NULL""", (tenant_id, conversation_id))
    return cur.rowcount == 1


# Turns ----------------------------------------------------------------------------------------
def running_answer(conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> Row | None:
    """The conversation's answer still under way: running, or paused on client tools within its
    offer (one whose offer expired is failed here, so it no longer holds the conversation)."""
    conn.execute("""UPDATE messages SET status = 'failed', error_code = %s, error = %s, updated_at = now(),
                        finished_at = now()
                     WHERE tenant_id = %s AND conversation_id = %s AND status = 'requires_action'
                       AND action_expires_at <= now()""",
                 (TOOL_OUTPUTS_EXPIRED, TOOL_OUTPUTS_EXPIRED_MESSAGE, tenant_id, conversation_id))
    return one(conn, f"""SELECT {MESSAGE_COLUMNS} FROM messages
                          WHERE tenant_id = %s AND conversation_id = %s AND status IN ('running', 'requires_action')
                          LIMIT 1""",
               (tenant_id, conversation_id))


def insert_turn(conn: Conn, conversation: Row, *, question: str, user_message_id: uuid.UUID,
                answer_id: uuid.UUID, agent_version: int | None) -> tuple[Row, Row]:
    """The question (completed) and its answer (running), at the conversation's next positions.
    The caller holds the conversation's row lock, so positions cannot collide."""
    position = int(conversation["message_count"]) + 1
    tenant_id, conversation_id, agent_id = conversation["tenant_id"], conversation["id"], conversation["agent_id"]
    question_row = one(conn, f"""INSERT INTO messages (id, tenant_id, conversation_id, position, role, content,
                                     status, agent_id, agent_version, finished_at)
                                  VALUES (%s, %s, %s, %s, 'user', %s, 'completed', %s, %s, now())
                                  RETURNING {MESSAGE_COLUMNS}""",
                       (user_message_id, tenant_id, conversation_id, position, question, agent_id, agent_version))
    answer_row = one(conn, f"""INSERT INTO messages (id, tenant_id, conversation_id, position, role, reply_to,
                                   status, agent_id, agent_version)
                                VALUES (%s, %s, %s, %s, 'assistant', %s, 'running', %s, %s)
                                RETURNING {MESSAGE_COLUMNS}""",
                     (answer_id, tenant_id, conversation_id, position + 1, user_message_id, agent_id, agent_version))
    assert question_row is not None and answer_row is not None
    name = conversation["name"] or " ".join(question.split())[:NAME_FROM_QUESTION_CHARS]
    conn.execute("""UPDATE conversations SET message_count = message_count + 2, last_message_at = now(),
                        updated_at = now(), name = %s WHERE tenant_id = %s AND id = %s""",
                 (name, tenant_id, conversation_id))
    return question_row, answer_row


def history(conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID, before_position: int,
            turns: int) -> list[tuple[str, str]]:
    """Up to ``turns`` past (question, answer) pairs before ``before_position``, oldest first.
    Failed turns and empty answers are left out: they taught the model nothing."""
    if turns <= 0:
        return []
    found = rows(conn, """SELECT q.content AS question, a.content AS answer FROM messages a
                           JOIN messages q ON q.id = a.reply_to AND q.tenant_id = a.tenant_id
                           WHERE a.tenant_id = %s AND a.conversation_id = %s AND a.role = 'assistant'
                             AND a.position < %s AND a.status = ANY(%s) AND a.content <> ''
                           ORDER BY a.position DESC LIMIT %s""",
                 (tenant_id, conversation_id, before_position, list(_HISTORY_STATUSES), turns))
    return [(row["question"], row["answer"]) for row in reversed(found)]


def checkpoint(conn: Conn, tenant_id: uuid.UUID, message_id: uuid.UUID, content: str) -> bool:
    """Save what a running answer holds so far (and show the reaper it is alive)."""
    cur = conn.execute("""UPDATE messages SET content = %s, updated_at = now()
                           WHERE tenant_id = %s AND id = %s AND status = 'running'""",
                       (content, tenant_id, message_id))
    return cur.rowcount == 1


def finish_message(conn: Conn, tenant_id: uuid.UUID, message_id: uuid.UUID, values: dict[str, Any]) -> Row | None:
    """End a running answer; None when it had already ended (the reaper, or a cancel, came first)."""
    from psycopg import sql

    clause, params = assignments({k: Jsonb(v) if isinstance(v, list) else v for k, v in values.items()})
    query = sql.SQL(f"""UPDATE messages SET {{}}, updated_at = now(), finished_at = now()
                        WHERE tenant_id = %(_tenant)s AND id = %(_id)s AND status = 'running'
                        RETURNING {MESSAGE_COLUMNS}""").format(clause)
    return one(conn, query, {**params, "_tenant": tenant_id, "_id": message_id})


def pause_message(conn: Conn, tenant_id: uuid.UUID, message_id: uuid.UUID, values: dict[str, Any],
                  required_action: dict[str, Any], expires_s: int) -> Row | None:
    """A running answer paused on client tools; None when it had already ended (reaped, cancelled)."""
    from psycopg import sql

    clause, params = assignments({k: Jsonb(v) if isinstance(v, list) else v for k, v in values.items()})
    query = sql.SQL(f"""UPDATE messages SET {{}}, status = 'requires_action', required_action = %(_action)s,
                            action_expires_at = now() + make_interval(secs => %(_expires)s), updated_at = now()
                        WHERE tenant_id = %(_tenant)s AND id = %(_id)s AND status = 'running'
                        RETURNING {MESSAGE_COLUMNS}""").format(clause)
    return one(conn, query, {**params, "_action": Jsonb(required_action), "_expires": expires_s,
                             "_tenant": tenant_id, "_id": message_id})


def claim_paused(conn: Conn, tenant_id: uuid.UUID, message_id: uuid.UUID, expires_at: datetime) -> Row | None:
    """A paused answer, within its offer, back to running (one claimant wins); None otherwise.
    ``expires_at`` names the pause the claimant checked its outputs against (each pause has its own)."""
    return one(conn, f"""UPDATE messages SET status = 'running', updated_at = now()
                          WHERE tenant_id = %s AND id = %s AND status = 'requires_action'
                            AND action_expires_at > now() AND action_expires_at = %s
                          RETURNING {MESSAGE_COLUMNS}""", (tenant_id, message_id, expires_at))


def end_paused(conn: Conn, tenant_id: uuid.UUID, message_id: uuid.UUID, status: str, code: str | None,
               message: str | None) -> bool:
    """End a paused answer (failed: its offer expired; cancelled: asked to); False when it was
    no longer paused."""
    cur = conn.execute("""UPDATE messages SET status = %s, error_code = %s, error = %s, updated_at = now(),
                              finished_at = now()
                           WHERE tenant_id = %s AND id = %s AND status = 'requires_action'""",
                       (status, code, message, tenant_id, message_id))
    return cur.rowcount == 1


def question_of(conn: Conn, tenant_id: uuid.UUID, answer_id: uuid.UUID) -> str | None:
    row = one(conn, """SELECT q.content FROM messages a
                          JOIN messages q ON q.id = a.reply_to AND q.tenant_id = a.tenant_id
                        WHERE a.tenant_id = %s AND a.id = %s""", (tenant_id, answer_id))
    return row["content"] if row is not None else None


_M_COLUMNS = ", ".join("m." + c.strip() for c in MESSAGE_COLUMNS.split(","))


def get_message(conn: Conn, tenant_id: uuid.UUID, message_id: uuid.UUID, *,
                include_deleted: bool = False) -> Row | None:
    """A message of a live conversation (``include_deleted``: of any), with the conversation's
    end user."""
    live = "" if include_deleted else " AND c.deleted_at IS NULL"
    return one(conn, f"""SELECT {_M_COLUMNS}, c.end_user FROM messages m
                          JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id
                          WHERE m.tenant_id = %s AND m.id = %s{live}""",
               (tenant_id, message_id))


def stuck_turns(conn: Conn, older_than_s: int, limit: int) -> list[Row]:
    return rows(conn, """SELECT tenant_id, message_id, conversation_id, status
                         FROM chat_turns_stuck(make_interval(secs => %s), %s)""", (older_than_s, limit))


# Reading messages -------------------------------------------------------------------------
def list_messages(conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID,
                  page: PageRequest) -> tuple[list[Row], int]:
    """One page of a conversation's messages (the caller checked the conversation is visible)."""
    return page_of(conn, "messages", MESSAGE_COLUMNS, "tenant_id = %(tenant)s AND conversation_id = %(conversation)s",
                   {"tenant": tenant_id, "conversation": conversation_id}, page)


def set_feedback(conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID,
                 rating: str | None, content: str) -> Row | None:
    """Replace an answer's feedback (no rating and no comment clears it). None when the message
    is not a finished answer of this conversation (completed, or cancelled with what it had
    written; a failed answer has nothing to rate)."""
    return one(conn, f"""UPDATE messages SET feedback_rating = %(rating)s, feedback_content = %(content)s,
                              feedback_at = CASE WHEN %(rating)s::text IS NULL AND %(content)s::text IS NULL
                                                 THEN NULL ELSE now() END,
                              updated_at = now()
                          WHERE tenant_id = %(tenant)s AND conversation_id = %(conversation)s AND id = %(id)s
                            AND role = 'assistant' AND status IN ('completed', 'cancelled')
                          RETURNING {MESSAGE_COLUMNS}""",
               {"rating": rating, "content": content or None, "tenant": tenant_id, "conversation": conversation_id,
                "id": message_id})
