"""The wire models of Dify's service API as Dify's clients send and read them (the official
``dify-client`` package, Dify's ``api/controllers/service_api`` and its response converters).
Requests are checked as Stratus checks its own: an unknown field is refused naming it; fields
Dify defines that Stratus cannot honour are refused naming them (``files`` until the files
domain serves them) or accepted and left out where they change nothing Stratus keeps
(``auto_generate_name``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.chat.api import MAX_MESSAGE_CHARS
from shared.conversations.contract import EndUser
from shared.validation import RequestModel

ResponseMode = Literal["blocking", "streaming"]


class _Request(RequestModel):
    # The user's text is kept as sent (no stripping); the rest as Stratus's own.
    model_config = ConfigDict(str_strip_whitespace=False)


def _blank_is_none(value: Any) -> Any:
    # Dify's clients send "" for "no conversation yet".
    return None if value == "" else value


_FILES = ("Files the message comes with, each `{\"type\", \"transfer_method\": \"local_file\", \"upload_file_id\"}` "
          "of a file uploaded with POST /dify/v1/files/upload: a chatflow agent's run reads them as sys.files; "
          "other agents refuse files")


def _uploaded_files(value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Dify's message files: uploads only (``local_file`` with an ``upload_file_id``)."""
    import uuid

    for item in value or []:
        if item.get("transfer_method", "local_file") != "local_file":
            raise ValueError("only uploaded files are taken (transfer_method local_file, upload_file_id from "
                             "POST /dify/v1/files/upload)")
        try:
            uuid.UUID(str(item.get("upload_file_id")))
        except ValueError:
            raise ValueError("upload_file_id must be the id POST /dify/v1/files/upload answered") from None
    return value


class DifyChatMessageRequest(_Request):
    """``POST /dify/v1/chat-messages``: a message to the key's agent, in a new conversation or
    ``conversation_id``'s."""

    query: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="The user's message")
    inputs: dict[str, Any] = Field(default_factory=dict,
                                   description="Values of the agent's system-prompt variables (a new conversation "
                                               "keeps them)")
    response_mode: ResponseMode = Field(default="blocking",
                                        description="`streaming`: Server-Sent Events; `blocking`: the whole answer")
    user: EndUser | None = Field(default=None, description="The end user (their conversations are theirs alone)")
    conversation_id: str | None = Field(default=None, max_length=64,
                                        description="Continue this conversation (empty or omitted: a new one)")
    files: list[dict[str, Any]] | None = Field(default=None, max_length=10, description=_FILES)
    auto_generate_name: bool = Field(default=True, description="Accepted; conversations keep the name given "
                                                               "with POST /conversations/{id}/name")

    _conversation = field_validator("conversation_id", mode="before")(_blank_is_none)
    _files = field_validator("files")(_uploaded_files)


class DifyCompletionMessageRequest(_Request):
    """``POST /dify/v1/completion-messages``: one answer of the key's agent, kept as a
    conversation of one turn. The question is ``query``, else ``inputs.query`` (as Dify's
    completion apps take it)."""

    inputs: dict[str, Any] = Field(default_factory=dict,
                                   description="The agent's variables; `inputs.query` is the question when "
                                               "`query` is not given")
    query: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    response_mode: ResponseMode = "blocking"
    user: EndUser | None = None
    files: list[dict[str, Any]] | None = Field(default=None, max_length=10, description=_FILES)

    _files = field_validator("files")(_uploaded_files)


class DifyUserBody(_Request):
    """The body of the stop routes."""

    user: EndUser | None = None


class DifyFeedbackRequest(_Request):
    rating: Literal["like", "dislike"] | None = Field(description="null takes the rating back")
    user: EndUser | None = None
    content: str | None = Field(default=None, max_length=2000)


class DifyRenameRequest(_Request):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    auto_generate: bool = Field(default=False, description="Not served: send `name`")
    user: EndUser | None = None


class DifyWorkflowRunRequest(_Request):
    """``POST /dify/v1/workflows/run``: a run of the key's workflow (its latest published version)."""

    inputs: dict[str, Any] = Field(default_factory=dict,
                                   description="The start node's variables by name; a file input (an `object`, "
                                               "or `array[object]`) is Dify's `{\"transfer_method\": \"local_file\", "
                                               "\"upload_file_id\": …}` of a file uploaded with POST /files/upload")
    response_mode: ResponseMode = "blocking"
    user: EndUser | None = Field(default=None, description="Accepted; runs belong to the key's workflow, "
                                                           "not to an end user")
    files: list[dict[str, Any]] | None = Field(default=None, description="Not served yet: null or empty")

    @field_validator("files")
    @classmethod
    def _no_files(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value:
            raise ValueError("files are not supported on this route yet: pass values in inputs")
        return value


class DifyListQuery(RequestModel):
    """Query strings arrive as text: not strict."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=False)


class DifyMessagesQuery(DifyListQuery):
    conversation_id: str = Field(min_length=1, max_length=64)
    user: EndUser | None = None
    first_id: str | None = Field(default=None, max_length=64,
                                 description="The oldest message of the page before: the page holds older ones")
    limit: int = Field(default=20, ge=1, le=100)


class DifyConversationsQuery(DifyListQuery):
    user: EndUser | None = None
    last_id: str | None = Field(default=None, max_length=64,
                                description="The last conversation of the page before")
    limit: int = Field(default=20, ge=1, le=100)
    sort_by: Literal["created_at", "-created_at", "updated_at", "-updated_at"] = "-updated_at"
    pinned: bool | None = Field(default=None, description="Accepted; Stratus has no pinned conversations")


class DifyUserQuery(DifyListQuery):
    user: EndUser | None = None


# --- Answers ---------------------------------------------------------------------------------------


class DifyUsage(BaseModel):
    prompt_tokens: int
    prompt_unit_price: str
    prompt_price_unit: str
    prompt_price: str
    completion_tokens: int
    completion_unit_price: str
    completion_price_unit: str
    completion_price: str
    total_tokens: int
    total_price: str
    currency: str
    latency: float = Field(description="Seconds from the request to the answer's end")


class DifyRetrieverResource(BaseModel):
    position: int
    dataset_id: str = Field(description="The knowledge base")
    dataset_name: str
    document_id: str
    document_name: str
    segment_id: str
    score: float | None
    content: str
    segment_position: int | None = None


class DifyMetadata(BaseModel):
    usage: DifyUsage
    retriever_resources: list[DifyRetrieverResource]


class DifyChatMessageOut(BaseModel):
    """A blocking chat or completion answer (``mode``: the agent's kind as a Dify app mode)."""

    event: Literal["message"] = "message"
    task_id: str
    id: str
    message_id: str
    conversation_id: str | None = None
    mode: str
    answer: str
    metadata: DifyMetadata
    created_at: int


class DifyResultOut(BaseModel):
    result: Literal["success"] = "success"


class DifyFeedback(BaseModel):
    rating: Literal["like", "dislike"]


class DifyMessageOut(BaseModel):
    """A turn as Dify lists it: the question and its answer."""

    id: str = Field(description="The answer's id")
    conversation_id: str
    inputs: dict[str, Any]
    query: str
    answer: str
    status: str = Field(description="Stratus's answer status: completed, cancelled, failed, running")
    error: str | None
    message_files: list[dict[str, Any]]
    feedback: DifyFeedback | None
    retriever_resources: list[DifyRetrieverResource]
    agent_thoughts: list[dict[str, Any]]
    created_at: int


class DifyMessageList(BaseModel):
    limit: int
    has_more: bool
    data: list[DifyMessageOut]


class DifyConversationOut(BaseModel):
    id: str
    name: str
    inputs: dict[str, Any]
    status: Literal["normal"] = "normal"
    introduction: str
    created_at: int
    updated_at: int


class DifyConversationList(BaseModel):
    limit: int
    has_more: bool
    data: list[DifyConversationOut]


class DifyWorkflowRunData(BaseModel):
    id: str
    workflow_id: str
    status: str = Field(description="running, paused (waiting for human input), succeeded, failed, stopped")
    outputs: dict[str, Any] | None
    error: str | None
    elapsed_time: float
    total_tokens: int
    total_steps: int
    created_at: int
    finished_at: int | None


class DifyWorkflowRunOut(BaseModel):
    """A blocking run's answer."""

    workflow_run_id: str
    task_id: str
    data: DifyWorkflowRunData


class DifyWorkflowRunDetail(BaseModel):
    """``GET /dify/v1/workflows/run/{workflow_run_id}``."""

    id: str
    workflow_id: str
    status: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    total_steps: int
    total_tokens: int
    created_at: int
    finished_at: int | None
    elapsed_time: float


class DifyParameters(BaseModel):
    """``GET /dify/v1/parameters``: what the app takes, in Dify's shape."""

    opening_statement: str
    suggested_questions: list[str]
    suggested_questions_after_answer: dict[str, Any]
    speech_to_text: dict[str, Any]
    text_to_speech: dict[str, Any]
    retriever_resource: dict[str, Any]
    annotation_reply: dict[str, Any]
    more_like_this: dict[str, Any]
    sensitive_word_avoidance: dict[str, Any]
    user_input_form: list[dict[str, Any]]
    file_upload: dict[str, Any]
    system_parameters: dict[str, Any]


class DifyUploadedFile(BaseModel):
    """``POST /dify/v1/files/upload``: the stored file (its id is what Stratus's file inputs take)."""

    id: str
    name: str
    size: int
    extension: str
    mime_type: str
    created_by: str | None
    created_at: int


class DifyInfo(BaseModel):
    """``GET /dify/v1/info``: the app (agent or workflow) the key is bound to."""

    name: str
    description: str
    tags: list[str]
    mode: str = Field(description="chat, agent-chat, advanced-chat (a chatflow agent) or workflow")
    author_name: str


# --- Stream data (documented in OpenAPI) -----------------------------------------------------------


class DifyMessageEvent(BaseModel):
    event: Literal["message", "agent_message"]
    task_id: str
    id: str
    message_id: str
    conversation_id: str | None = None
    answer: str
    created_at: int


class DifyAgentThoughtEvent(BaseModel):
    event: Literal["agent_thought"]
    task_id: str
    id: str
    message_id: str
    conversation_id: str | None = None
    position: int
    thought: str
    observation: str
    tool: str
    tool_input: str
    created_at: int


class DifyMessageEndEvent(BaseModel):
    event: Literal["message_end"]
    task_id: str
    id: str
    message_id: str
    conversation_id: str | None = None
    metadata: DifyMetadata


class DifyStreamErrorEvent(BaseModel):
    event: Literal["error"]
    task_id: str
    message_id: str | None = None
    status: int
    code: str
    message: str


class DifyWorkflowEvent(BaseModel):
    event: Literal["workflow_started", "node_started", "text_chunk", "node_finished", "workflow_finished"]
    task_id: str
    workflow_run_id: str
    data: dict[str, Any]
