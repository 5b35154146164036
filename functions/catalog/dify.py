"""Dify's service API over the agent or workflow a key is bound to (docs/dify-api.md,
docs/adr/0046-dify-service-api.md): what Dify's clients call with base URL
``<stratus>/dify/v1``. Chat and completion messages stream, so they are routes of the chat
function (its function URL, by path like ``/api/v1/chat``); workflow runs stream, so
``/dify/v1/workflows/run`` is a prefix of the workflow-stream function; the rest are HTTP API
routes."""

from __future__ import annotations

from functions.catalog.files import MAX_UPLOAD_BODY_BYTES
from shared.catalog import DATABASE, REDIS, Facade, Function, Http, SseEvent, StreamRoute, bucket, state_machine

DIALECT = "dify"
FACADES = (Facade("dify", "/dify", DIALECT, "/dify/v1",
                  "Dify's service API: the app is the agent or workflow the key is bound to"),)
_API = "shared.facades.dify.api"
_TAG = "dify"

# Served by the chat function (functions/catalog/chat.py adds the prefixes and the routes).
CHAT_MESSAGES = "/dify/v1/chat-messages"
COMPLETION_MESSAGES = "/dify/v1/completion-messages"
_ERROR = SseEvent("error", f"{_API}:DifyStreamErrorEvent", "The answer failed after the stream began (the answer is "
                                                       "stored failed); the stream ends")
_MESSAGE_EVENTS = (
    SseEvent("message", f"{_API}:DifyMessageEvent", "A piece of the answer"),
    SseEvent("agent_message", f"{_API}:DifyMessageEvent", "A piece of a smart-reasoning agent's answer"),
    SseEvent("agent_thought", f"{_API}:DifyAgentThoughtEvent",
             "A smart-reasoning step: its thought, tool call and observation (resent with the same id as it grows)"),
    SseEvent("message_end", f"{_API}:DifyMessageEndEvent",
             "The answer ended: metadata.usage and metadata.retriever_resources; the stream ends"),
    _ERROR,
)
CHAT_ROUTES = (
    StreamRoute("POST", CHAT_MESSAGES, "agent:run",
                "Dify chat message: the key's agent answers `query` in a new conversation or `conversation_id`'s; "
                "`response_mode: streaming` answers Dify's events", tag=_TAG, body=f"{_API}:DifyChatMessageRequest",
                response=f"{_API}:DifyChatMessageOut", events=_MESSAGE_EVENTS, dialect=DIALECT,
                operation_id="dify-chat-messages"),
    StreamRoute("POST", CHAT_MESSAGES + "/{task_id}/stop", "agent:run",
                "Dify: stop a streaming chat message (its task_id); the answer keeps what was generated",
                tag=_TAG, body=f"{_API}:DifyUserBody", response=f"{_API}:DifyResultOut", dialect=DIALECT,
                operation_id="dify-chat-messages-stop"),
    StreamRoute("POST", COMPLETION_MESSAGES, "agent:run",
                "Dify completion message: the key's agent answers `query` (or `inputs.query`) once, with no "
                "conversation to continue", tag=_TAG, body=f"{_API}:DifyCompletionMessageRequest",
                response=f"{_API}:DifyChatMessageOut", events=_MESSAGE_EVENTS, dialect=DIALECT,
                operation_id="dify-completion-messages"),
    StreamRoute("POST", COMPLETION_MESSAGES + "/{task_id}/stop", "agent:run",
                "Dify: stop a streaming completion message (its task_id)", tag=_TAG, body=f"{_API}:DifyUserBody",
                response=f"{_API}:DifyResultOut", dialect=DIALECT, operation_id="dify-completion-messages-stop"),
)

# Served by the workflow-stream function (functions/catalog/workflows.py adds the prefix).
WORKFLOWS_RUN = "/dify/v1/workflows/run"
WORKFLOW_ROUTES = (
    StreamRoute("POST", WORKFLOWS_RUN, "workflow:run",
                "Dify workflow run: the key's workflow (its latest published version) runs with `inputs`; "
                "`blocking` waits up to 25 s for the result, `streaming` answers Dify's events",
                tag=_TAG, body=f"{_API}:DifyWorkflowRunRequest", response=f"{_API}:DifyWorkflowRunOut",
                events=(SseEvent("workflow_started", f"{_API}:DifyWorkflowEvent", "The run began"),
                        SseEvent("node_started", f"{_API}:DifyWorkflowEvent", "A node began"),
                        SseEvent("text_chunk", f"{_API}:DifyWorkflowEvent", "A piece of an LLM node's text"),
                        SseEvent("node_finished", f"{_API}:DifyWorkflowEvent",
                                 "A node settled (outputs cut to a preview, as Stratus's stream has them)"),
                        SseEvent("workflow_finished", f"{_API}:DifyWorkflowEvent",
                                 "The run ended: status, outputs, error, elapsed_time, total_tokens, total_steps"),
                        _ERROR),
                dialect=DIALECT, operation_id="dify-workflows-run"),
    StreamRoute("GET", WORKFLOWS_RUN + "/{workflow_run_id}", "workflow:run",
                "Dify: one run of the key's workflow", tag=_TAG, response=f"{_API}:DifyWorkflowRunDetail",
                dialect=DIALECT, operation_id="dify-workflows-run-get"),
)


def _http(name: str, module: str, method: str, path: str, permission: str, summary: str) -> Function:
    return Function(name, f"functions.dify.{module}", "chat",
                    Http(method, path, permission=permission, tag=_TAG, dialect=DIALECT, summary=summary),
                    access=(DATABASE, REDIS))


FUNCTIONS: tuple[Function, ...] = (
    _http("dify-messages-list", "list_messages", "GET", "/dify/v1/messages", "agent:run",
          "Dify: a conversation's messages before first_id (each a question and its answer), oldest first"),
    _http("dify-messages-feedback", "message_feedback", "POST", "/dify/v1/messages/{message_id}/feedbacks",
          "agent:run", "Dify: like or dislike an answer (rating null takes it back)"),
    _http("dify-conversations-list", "list_conversations", "GET", "/dify/v1/conversations", "agent:run",
          "Dify: the end user's conversations with the key's agent after last_id"),
    _http("dify-conversations-delete", "delete_conversation", "DELETE", "/dify/v1/conversations/{conversation_id}",
          "agent:run", "Dify: delete a conversation"),
    _http("dify-conversations-rename", "rename_conversation", "POST",
          "/dify/v1/conversations/{conversation_id}/name", "agent:run", "Dify: rename a conversation"),
    Function("dify-workflow-tasks-stop", "functions.dify.stop_workflow_task", "workflows",
             Http("POST", "/dify/v1/workflows/tasks/{task_id}/stop", permission="workflow:run", tag=_TAG,
                  dialect=DIALECT, summary="Dify: stop a run of the key's workflow (its task_id)"),
             # Cancelling reads the run (large outputs in the payloads bucket) and stops its execution.
             timeout_s=10, layers=("base", "aws"),
             access=(DATABASE, REDIS, bucket("payloads", "read"), state_machine("workflow-run", "stop"))),
    # Either app's key reads its app: an agent's (agent:run) or a workflow's (workflow:run).
    _http("dify-parameters", "get_parameters", "GET", "/dify/v1/parameters", "agent:run|workflow:run",
          "Dify: what the key's app takes (an agent's variables and opening; a workflow's start inputs)"),
    _http("dify-info", "get_info", "GET", "/dify/v1/info", "agent:run|workflow:run",
          "Dify: the key's app (name, description, mode)"),
    # The files domain's upload (shared/files), answered as Dify's UploadFile.
    Function("dify-files-upload", "functions.dify.upload_file", "files",
             Http("POST", "/dify/v1/files/upload", permission="file:write", tag=_TAG, dialect=DIALECT,
                  body="multipart", max_body_bytes=MAX_UPLOAD_BODY_BYTES,
                  summary="Dify: upload a file for the key's app (multipart/form-data: part \"file\", field "
                          "\"user\"; at most 4 MiB)",
                  too_large_hint="files over 4 MiB go to a knowledge base as documents (presigned upload)"),
             layers=("base", "aws"), access=(DATABASE, REDIS, bucket("uploads", "write", "delete", prefix="tenants/"))),
)
