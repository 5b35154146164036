"""Runs in PostgreSQL (``workflow_runs``, ``node_runs``) with outputs past the inline bound in
the payloads bucket: the interpreter's :class:`~shared.workflows.ports.RunStore` and the reads
the runs API makes. Every write is idempotent and none changes a finished run."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from psycopg.types.json import Jsonb

from shared.db.database import Database
from shared.db.queries import Row, one, rows
from shared.ids import new_id
from shared.workflows.ports import LoadedRun, NodeRecord, PendingInput, RunError, RunRef

if TYPE_CHECKING:
    from shared.workflows.definition import Node, WorkflowDocument
    from shared.workflows.engine.runner import NodeRunResult

# Outputs up to this many bytes (as JSON) stay in the row; larger ones go to the payloads bucket
# and the row keeps their key (a Step Functions state never carries them either way).
INLINE_OUTPUT_BYTES = 64 * 1024


class Payloads(Protocol):
    """Write-once JSON documents addressed by key (S3's payloads bucket)."""

    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class S3Payloads:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")

    def get(self, key: str) -> bytes:
        return bytes(self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read())


@dataclass(frozen=True)
class ChatRun:
    """A chatflow run's chat context, kept on the run."""

    query: str
    dialogue_count: int = 1
    conversation_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None


def payload_key(tenant_id: str | uuid.UUID, run_id: str | uuid.UUID, name: str) -> str:
    return f"workflow-runs/{tenant_id}/{run_id}/{name}.json"


def _encoded(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _recorded_inputs(inputs: Mapping[str, Any]) -> Jsonb:
    """A node's resolved inputs, for the record: past the inline bound only their names (the
    values are upstream nodes' outputs, recorded with those)."""
    body = _encoded(inputs)
    if len(body) <= INLINE_OUTPUT_BYTES:
        return Jsonb(json.loads(body))
    return Jsonb({"truncated": True, "names": sorted(inputs)})


class PostgresRunStore:
    def __init__(self, db: Database, payloads: Payloads) -> None:
        self._db = db
        self._payloads = payloads

    # Outputs --------------------------------------------------------------------------------
    def _stored(self, tenant_id: str | uuid.UUID, run_id: str | uuid.UUID, name: str,
                outputs: Mapping[str, Any] | None) -> tuple[Jsonb | None, str | None]:
        """(inline outputs, payload key): one of them, or neither for no outputs."""
        if outputs is None:
            return None, None
        body = _encoded(outputs)
        if len(body) <= INLINE_OUTPUT_BYTES:
            return Jsonb(json.loads(body)), None
        key = payload_key(tenant_id, run_id, name)
        self._payloads.put(key, body)
        return None, key

    def outputs(self, row: Mapping[str, Any], column: str = "outputs") -> dict[str, Any] | None:
        """A row's outputs (or ``children``), read from the payloads bucket when they were too
        large for it."""
        if row.get(f"{column}_ref"):
            return dict(json.loads(self._payloads.get(str(row[f"{column}_ref"]))))
        value = row.get(column)
        return dict(value) if value is not None else None

    # Creating ----------------------------------------------------------------------------------
    def create(self, run_id: uuid.UUID, *, tenant_id: uuid.UUID, workflow_id: uuid.UUID, version: int | None,
               document: WorkflowDocument, mode: str, inputs: Mapping[str, Any], created_by: uuid.UUID | None,
               api_key_id: uuid.UUID | None = None, chat: ChatRun | None = None,
               conversation: Mapping[str, Any] | None = None, running: bool = False,
               lineage: Sequence[str] = ()) -> None:
        """Insert a run (``pending``; ``running`` when the caller runs it at once, in-process). A
        chatflow's run keeps its chat context and its conversation variables' starting values."""
        with self._db.transaction(tenant_id) as conn:
            conn.execute(
                """INSERT INTO workflow_runs (id, tenant_id, workflow_id, version, document, mode, inputs, created_by,
                                              api_key_id, conversation_id, message_id, query, dialogue_count,
                                              conversation, status, started_at, lineage)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                           CASE WHEN %s THEN now() END, %s)""",
                (run_id, tenant_id, workflow_id, version, Jsonb(document.model_dump(mode="json")), mode,
                 Jsonb(json.loads(_encoded(inputs))), created_by, api_key_id,
                 chat.conversation_id if chat else None, chat.message_id if chat else None,
                 chat.query if chat else None, chat.dialogue_count if chat else None,
                 Jsonb(json.loads(_encoded(conversation or {}))), "running" if running else "pending", running,
                 Jsonb(list(lineage))))

    def conversation_values(self, tenant_id: uuid.UUID, conversation_id: uuid.UUID,
                            document: WorkflowDocument) -> dict[str, Any]:
        """The conversation variables a conversation holds for ``document``: each declared
        variable's kept value when it was kept with the same type (else it is left out, so the
        run takes its default)."""
        declared = {variable.name: variable.type for variable in document.conversation_variables}
        if not declared:
            return {}
        with self._db.transaction(tenant_id) as conn:
            kept = rows(conn, """SELECT name, value_type, value FROM conversation_variables
                                  WHERE conversation_id = %s AND tenant_id = %s""", (conversation_id, tenant_id))
        return {row["name"]: row["value"] for row in kept
                if declared.get(row["name"]) == row["value_type"]}

    # The interpreter's port ---------------------------------------------------------------------
    def load(self, run: RunRef) -> LoadedRun:
        from shared.workflows.definition import WorkflowDocument
        from shared.workflows.engine.runner import ChatContext, RunContext

        tenant = uuid.UUID(run.tenant_id)
        with self._db.transaction(tenant) as conn:
            row = one(conn, """SELECT id, workflow_id, version, document, status, inputs, created_by, created_at,
                                      started_at, conversation_id, query, dialogue_count, conversation, lineage
                                 FROM workflow_runs WHERE id = %s AND tenant_id = %s""",
                      (uuid.UUID(run.run_id), tenant))
            if row is None:
                raise LookupError(f"workflow run {run.run_id} does not exist")
            nodes = rows(conn, """SELECT node_id, status, handle, outputs, outputs_ref, error, answer FROM node_runs
                                   WHERE run_id = %s AND tenant_id = %s ORDER BY seq""",
                         (uuid.UUID(run.run_id), tenant))
        started: datetime = row["started_at"] or row["created_at"]
        document = WorkflowDocument.model_validate(row["document"])
        chat = None
        if document.mode == "chatflow":
            chat = ChatContext(query=row["query"] or "",
                               conversation_id=str(row["conversation_id"]) if row["conversation_id"] else None,
                               dialogue_count=row["dialogue_count"] or 1)
        context = RunContext(tenant_id=tenant, run_id=run.run_id, workflow_id=str(row["workflow_id"]),
                             version=str(row["version"]) if row["version"] is not None else "draft",
                             user_id=str(row["created_by"]) if row["created_by"] else None,
                             started_at=started, inputs=dict(row["inputs"] or {}), chat=chat,
                             lineage=tuple(str(item) for item in row["lineage"] or ()))
        records = {
            node["node_id"]: NodeRecord(node["node_id"], node["status"], node["handle"],
                                        self.outputs(node) if node["status"] == "succeeded" else None,
                                        node["error"], node["answer"])
            for node in nodes}
        return LoadedRun(context, document, row["status"], records, dict(row["conversation"] or {}))

    def begin(self, run: RunRef) -> bool:
        with self._db.transaction(uuid.UUID(run.tenant_id)) as conn:
            cur = conn.execute("""UPDATE workflow_runs SET status = 'running', started_at = now()
                                   WHERE id = %s AND tenant_id = %s AND status = 'pending'""",
                               (uuid.UUID(run.run_id), uuid.UUID(run.tenant_id)))
            return cur.rowcount == 1

    def dispatch(self, run: RunRef, nodes: Sequence[Node]) -> None:
        with self._db.transaction(uuid.UUID(run.tenant_id)) as conn:
            for node in nodes:
                conn.execute("""INSERT INTO node_runs (id, tenant_id, run_id, node_id, node_type, title, status)
                                VALUES (%s, %s, %s, %s, %s, %s, 'running')
                                ON CONFLICT (run_id, node_id) DO NOTHING""",
                             (new_id(), uuid.UUID(run.tenant_id), uuid.UUID(run.run_id), node.id, node.type,
                              node.title or ""))

    def skip(self, run: RunRef, nodes: Sequence[Node]) -> None:
        with self._db.transaction(uuid.UUID(run.tenant_id)) as conn:
            for node in nodes:
                conn.execute("""INSERT INTO node_runs (id, tenant_id, run_id, node_id, node_type, title, status,
                                                       finished_at, elapsed_ms)
                                VALUES (%s, %s, %s, %s, %s, %s, 'skipped', now(), 0)
                                ON CONFLICT (run_id, node_id) DO NOTHING""",
                             (new_id(), uuid.UUID(run.tenant_id), uuid.UUID(run.run_id), node.id, node.type,
                              node.title or ""))

    def record(self, run: RunRef, node: Node, result: NodeRunResult) -> bool:
        tenant, run_id = uuid.UUID(run.tenant_id), uuid.UUID(run.run_id)
        stored = self._node_values(tenant, run_id, node, result)
        with self._db.transaction(tenant) as conn:
            state = one(conn, """SELECT status, workflow_id, conversation_id,
                                        document->'conversation_variables' AS declared
                                   FROM workflow_runs WHERE id = %s AND tenant_id = %s FOR UPDATE""",
                        (run_id, tenant))
            live = state is not None and state["status"] in ("pending", "running")
            _upsert_node(conn, {**stored, "status": result.status if live else "cancelled"})
            if live and result.tokens:
                conn.execute("UPDATE workflow_runs SET tokens = tokens + %s WHERE id = %s AND tenant_id = %s",
                             (result.tokens, run_id, tenant))
            if live and result.assigned:
                assert state is not None
                _keep_conversation(conn, tenant, run_id, state, result.assigned)
        return live

    def _node_values(self, tenant: uuid.UUID, run_id: uuid.UUID, node: Node, result: NodeRunResult) -> dict[str, Any]:
        """A node run's columns (large outputs and children written to the payloads bucket)."""
        outputs, ref = self._stored(tenant, run_id, f"nodes/{uuid.uuid5(uuid.NAMESPACE_URL, node.id)}",
                                    result.outputs)
        children, children_ref = self._stored(
            tenant, run_id, f"nodes/{uuid.uuid5(uuid.NAMESPACE_URL, node.id)}-children",
            {"children": [child.to_dict() for child in result.children]} if result.children else None)
        return {"id": new_id(), "tenant": tenant, "run": run_id, "node": node.id, "type": node.type,
                "title": node.title or "", "status": result.status,
                "handle": result.handle if result.status == "succeeded" else None,
                "inputs": _recorded_inputs(result.inputs), "outputs": outputs, "ref": ref,
                "error": Jsonb(result.error.to_dict()) if result.error else None, "attempts": result.attempts,
                "tokens": result.tokens, "elapsed": result.elapsed_ms, "children": children,
                "children_ref": children_ref, "answer": result.answer}

    # Pauses for human input -----------------------------------------------------------------
    def pause(self, run: RunRef, node: Node, pending: PendingInput) -> None:
        tenant, run_id = uuid.UUID(run.tenant_id), uuid.UUID(run.run_id)
        with self._db.transaction(tenant) as conn:
            conn.execute("""INSERT INTO node_runs (id, tenant_id, run_id, node_id, node_type, title, status)
                            VALUES (%s, %s, %s, %s, %s, %s, 'running')
                            ON CONFLICT (run_id, node_id) DO NOTHING""",
                         (new_id(), tenant, run_id, node.id, node.type, node.title or ""))
            conn.execute("""UPDATE workflow_runs SET pause_node_id = %s, pause_form = %s, pause_expires_at = %s,
                                   paused_at = NULL
                             WHERE id = %s AND tenant_id = %s AND status = 'running'""",
                         (node.id, Jsonb(dict(pending.form)), pending.expires_at, run_id, tenant))

    def save_task_token(self, run: RunRef, node_id: str, task_token: str) -> PendingInput | None:
        tenant, run_id = uuid.UUID(run.tenant_id), uuid.UUID(run.run_id)
        with self._db.transaction(tenant) as conn:
            conn.execute("""UPDATE node_runs SET task_token = %s
                             WHERE run_id = %s AND tenant_id = %s AND node_id = %s AND status = 'running'""",
                         (task_token, run_id, tenant, node_id))
            row = one(conn, """UPDATE workflow_runs SET status = 'paused', paused_at = now()
                                WHERE id = %s AND tenant_id = %s AND status = 'running' AND pause_node_id = %s
                                RETURNING pause_form, pause_expires_at""", (run_id, tenant, node_id))
        if row is None:
            return None
        return PendingInput(node_id, dict(row["pause_form"] or {}), row["pause_expires_at"])

    def resume(self, run: RunRef, node: Node, result: NodeRunResult) -> str | None:
        tenant, run_id = uuid.UUID(run.tenant_id), uuid.UUID(run.run_id)
        stored = self._node_values(tenant, run_id, node, result)
        with self._db.transaction(tenant) as conn:
            claimed = one(conn, """UPDATE workflow_runs SET status = 'running'
                                    WHERE id = %s AND tenant_id = %s AND status = 'paused' AND pause_node_id = %s
                                    RETURNING id""", (run_id, tenant, node.id))
            if claimed is None:
                return None
            token = one(conn, "SELECT task_token FROM node_runs WHERE run_id = %s AND tenant_id = %s AND node_id = %s",
                        (run_id, tenant, node.id))
            _upsert_node(conn, stored)
        return str(token["task_token"]) if token and token["task_token"] else ""

    def reopen(self, run: RunRef, node_id: str) -> None:
        """Undo a resume whose answer could not reach the execution: the run waits at ``node_id``
        again (unless something moved it on meanwhile)."""
        tenant, run_id = uuid.UUID(run.tenant_id), uuid.UUID(run.run_id)
        with self._db.transaction(tenant) as conn:
            cur = conn.execute("""UPDATE workflow_runs SET status = 'paused'
                                   WHERE id = %s AND tenant_id = %s AND status = 'running' AND pause_node_id = %s""",
                               (run_id, tenant, node_id))
            if cur.rowcount == 1:
                conn.execute("""UPDATE node_runs SET status = 'running', handle = NULL, outputs = NULL,
                                       outputs_ref = NULL, error = NULL, finished_at = NULL, elapsed_ms = NULL
                                 WHERE run_id = %s AND tenant_id = %s AND node_id = %s""", (run_id, tenant, node_id))

    def count(self, run: RunRef, transitions: int) -> None:
        with self._db.transaction(uuid.UUID(run.tenant_id)) as conn:
            conn.execute("UPDATE workflow_runs SET transitions = transitions + %s WHERE id = %s AND tenant_id = %s",
                         (transitions, uuid.UUID(run.run_id), uuid.UUID(run.tenant_id)))

    def finish(self, run: RunRef, status: Literal["succeeded", "failed", "cancelled"],
               outputs: Mapping[str, Any] | None = None, error: RunError | None = None) -> bool:
        tenant, run_id = uuid.UUID(run.tenant_id), uuid.UUID(run.run_id)
        stored, ref = self._stored(tenant, run_id, "outputs", outputs)
        with self._db.transaction(tenant) as conn:
            cur = conn.execute(
                """UPDATE workflow_runs SET status = %(status)s, outputs = %(outputs)s, outputs_ref = %(ref)s,
                          error_code = %(code)s, error_message = %(message)s, error_node_id = %(node)s,
                          started_at = coalesce(started_at, now())
                    WHERE id = %(id)s AND tenant_id = %(tenant)s AND status IN ('pending', 'running', 'paused')""",
                {"status": status, "outputs": stored, "ref": ref, "code": error.code if error else None,
                 "message": error.message if error else None, "node": error.node_id if error else None,
                 "id": run_id, "tenant": tenant})
            if cur.rowcount != 1:
                return False
            if status != "succeeded":
                finish_running_nodes(conn, tenant, run_id)
        return True


def _upsert_node(conn: Any, values: Mapping[str, Any]) -> None:
    """Write a node's result (once: only a node without one, or still running, is written)."""
    conn.execute(
        """INSERT INTO node_runs (id, tenant_id, run_id, node_id, node_type, title, status, handle, inputs,
                                  outputs, outputs_ref, error, attempts, tokens, started_at, finished_at,
                                  elapsed_ms, children, children_ref, answer)
           VALUES (%(id)s, %(tenant)s, %(run)s, %(node)s, %(type)s, %(title)s, %(status)s, %(handle)s,
                   %(inputs)s, %(outputs)s, %(ref)s, %(error)s, %(attempts)s, %(tokens)s,
                   now() - make_interval(secs => %(elapsed)s / 1000.0), now(), %(elapsed)s, %(children)s,
                   %(children_ref)s, %(answer)s)
           ON CONFLICT (run_id, node_id) DO UPDATE
              SET status = excluded.status, handle = excluded.handle, inputs = excluded.inputs,
                  outputs = excluded.outputs, outputs_ref = excluded.outputs_ref, error = excluded.error,
                  attempts = excluded.attempts, tokens = excluded.tokens,
                  started_at = excluded.started_at, finished_at = now(), elapsed_ms = excluded.elapsed_ms,
                  children = excluded.children, children_ref = excluded.children_ref,
                  answer = excluded.answer
            WHERE node_runs.status = 'running'""", values)


def _keep_conversation(conn: Any, tenant_id: uuid.UUID, run_id: uuid.UUID, run: Mapping[str, Any],
                       assigned: Mapping[str, Any]) -> None:
    """A chatflow node changed conversation variables: on the run (what its next nodes read),
    and, for a chat turn's run, on the conversation, at once (as Dify keeps them: a later
    failure of the run does not undo an assignment that happened)."""
    conn.execute("UPDATE workflow_runs SET conversation = conversation || %s WHERE id = %s AND tenant_id = %s",
                 (Jsonb(json.loads(_encoded(assigned))), run_id, tenant_id))
    if run["conversation_id"] is None:
        return
    types = {str(v.get("name")): str(v.get("type") or "string") for v in (run["declared"] or [])
             if isinstance(v, dict)}
    for name, value in assigned.items():
        conn.execute(
            """INSERT INTO conversation_variables (tenant_id, conversation_id, name, value_type, value, workflow_id,
                                                   run_id)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (conversation_id, name) DO UPDATE
                  SET value_type = excluded.value_type, value = excluded.value, workflow_id = excluded.workflow_id,
                      run_id = excluded.run_id, updated_at = now()""",
            (tenant_id, run["conversation_id"], name, types.get(name, "string"),
             Jsonb(json.loads(_encoded({"v": value}))["v"]), run["workflow_id"], run_id))


def finish_running_nodes(conn: Any, tenant_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """A run that ended leaves no node running: they end cancelled."""
    conn.execute("""UPDATE node_runs SET status = 'cancelled', finished_at = now(),
                           elapsed_ms = (extract(epoch FROM now() - started_at) * 1000)::integer
                     WHERE run_id = %s AND tenant_id = %s AND status = 'running'""", (run_id, tenant_id))


def run_row(conn: Any, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Row | None:
    return one(conn, f"SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = %s AND tenant_id = %s",
               (run_id, tenant_id))


RUN_COLUMNS = """id, tenant_id, workflow_id, version, status, mode, inputs, outputs, outputs_ref, error_code,
    error_message, error_node_id, execution_arn, transitions, tokens, created_by, created_at, started_at, finished_at,
    elapsed_ms, pause_node_id, pause_form, paused_at, pause_expires_at,
    conversation_id, message_id, query, dialogue_count"""
