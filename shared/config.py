"""Settings read from the environment once per container and validated at cold start.

Code never reads ``os.environ`` itself: it asks :func:`get_settings`. Which settings a
function needs follows from its catalog entry (:func:`required_settings`): CDK sets exactly
those (infra/functions.py) and the function checks them when it starts (shared/handler.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from shared.catalog import Access, Function


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    # "lambda": one database connection per container; "local": a pool shared by the
    # local runtime's threads.
    stratus_runtime: Literal["lambda", "local"] = "lambda"
    # The function's catalog name (set by CDK): which entry's settings to check at cold start.
    stratus_function: str | None = None

    # Application connection (non-owner role, row-level security applies).
    database_url: SecretStr | None = None
    # In AWS the credentials come from Secrets Manager through the Parameters and
    # Secrets Lambda Extension; these name the secrets.
    database_secret_arn: str | None = None
    database_admin_secret_arn: str | None = None
    admin_token_secret_arn: str | None = None
    database_host: str | None = None
    # The edge's origin header secret (shared/auth/origin.py): its ARN in AWS, required of every
    # edge-facing function; or the value itself (a test, an on-premise proxy). Neither: the
    # header is not enforced (the local runtime has no edge).
    origin_secret_arn: str | None = None
    origin_secret: SecretStr | None = None
    database_name: str = "stratus"
    db_pool_max: int = Field(default=16, ge=1, le=256)
    db_connect_timeout_s: int = Field(default=5, ge=1, le=60)

    redis_url: SecretStr | None = None
    # ElastiCache Serverless only speaks cluster mode.
    redis_cluster: bool = True
    # The cache's RBAC user (docs/adr/0048) and the secret holding its password (a plain string),
    # both set in AWS. Neither: the client sends no AUTH (the local runtime, or a REDIS_URL that
    # carries user:password itself).
    redis_user: str | None = None
    redis_secret_arn: str | None = None

    # Largest request body accepted by the API (bytes); larger answers 413.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # How long API Gateway may cache an authorizer answer; the middleware keeps
    # revocations and role changes effective for at least this long.
    authorizer_cache_ttl_s: int = Field(default=300, ge=0, le=3600)

    # Soft-deleted rows older than this are purged by the maintenance schedule.
    retention_days: int = Field(default=30, ge=1)
    purge_batch_size: int = Field(default=500, ge=1, le=10_000)

    # Names of AWS resources, set by the CDK app (and by the local runtime).
    uploads_bucket: str | None = None
    # Large machine-written payloads (workflow node outputs past the inline bound).
    payloads_bucket: str | None = None
    purge_state_machine_arn: str | None = None

    # The Parameters and Secrets Lambda Extension listens on this port.
    parameters_secrets_extension_http_port: int = 2773
    aws_session_token: SecretStr | None = None

    # Model gateway. Platform defaults apply when a tenant has chosen none.
    # Read as default_<capability> (shared/models/resolver.py).
    default_chat_model: str = "gpt-4o-mini"
    default_chat_fallback_model: str | None = None
    default_embedding_model: str = "all-minilm-l6-v2"
    default_rerank_model: str | None = None
    # How long a warm function trusts its copy of the catalog (changes reach it within this).
    model_catalog_ttl_s: int = Field(default=60, ge=0, le=3600)
    # Per call type: connect, then read (a stream's read timeout is the gap between chunks).
    model_connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    model_chat_read_timeout_s: float = Field(default=60.0, gt=0, le=900)
    model_embedding_read_timeout_s: float = Field(default=30.0, gt=0, le=900)
    model_test_read_timeout_s: float = Field(default=15.0, gt=0, le=900)
    model_max_attempts: int = Field(default=3, ge=1, le=10)
    # Secrets Manager secret (JSON) holding the platform's provider keys, e.g. OPENAI_API_KEY.
    provider_keys_secret_arn: str | None = None
    # KMS key that encrypts tenants' provider credentials.
    credentials_kms_key_id: str | None = None
    # Per-token request rate limit (token bucket): burst size and sustained rate.
    rate_limit_burst: int = Field(default=120, ge=1)
    rate_limit_per_s: float = Field(default=20.0, gt=0)

    # Tenant-supplied URLs (model endpoints, next tools and HTTP nodes) may reach these
    # otherwise refused destinations: comma-separated hosts (``*.name`` for subdomains) and
    # CIDRs. Empty: only public addresses (shared/egress.py, docs/adr/0030-egress-policy.md).
    stratus_egress_allow: str = ""

    # Knowledge bases. "postgres": pgvector + full-text in the application database (the local
    # default, fine for small deployments); "opensearch": the managed domain at opensearch_url.
    vector_store: Literal["postgres", "opensearch"] = "postgres"
    opensearch_url: str | None = None
    # Index names start with this (one index per embedding dimension).
    opensearch_index_prefix: str = "stratus-segments"
    # Requests to a managed domain are SigV4-signed for this service ("es"; "aoss": serverless).
    opensearch_sigv4_service: Literal["es", "aoss", "none"] = "es"
    opensearch_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # HNSW search breadth (pgvector hnsw.ef_search; OpenSearch k-NN ef_search).
    hnsw_ef_search: int = Field(default=100, ge=10, le=1000)
    # Largest uploaded document (bytes); the presigned upload's policy enforces it.
    max_document_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    # Documents whose segment count exceeds this fan out through the ingest state machine.
    ingest_inline_segments: int = Field(default=256, ge=1)
    # Segments per Map item of the ingest state machine.
    ingest_batch_segments: int = Field(default=128, ge=1, le=2048)
    # The sweeper retries a document unchanged for this long, at most ingest_max_retries times.
    ingest_stuck_after_s: int = Field(default=1200, ge=60)
    ingest_max_retries: int = Field(default=2, ge=0, le=10)
    # Presigned uploads stay valid this long.
    upload_url_ttl_s: int = Field(default=900, ge=60, le=604800)
    ingest_queue_url: str | None = None
    ingest_state_machine_arn: str | None = None
    knowledge_base_delete_state_machine_arn: str | None = None

    # Workflows (docs/adr/0029-workflow-interpreter-infrastructure.md).
    workflow_run_state_machine_arn: str | None = None
    # A sync run waits this long for its result before answering 202 (below API Gateway's 30 s).
    workflow_sync_wait_s: float = Field(default=25.0, gt=0, le=28)
    # A run's events stay readable this long.
    workflow_events_ttl_s: int = Field(default=86_400, ge=60)
    # The reconciler asks about runs unchanged for this long.
    workflow_stale_after_s: int = Field(default=300, ge=30)
    # A streamed run's idle stream gets a heartbeat at least this often
    # (docs/adr/0035-workflow-run-streaming.md).
    workflow_stream_heartbeat_s: float = Field(default=10.0, gt=0, le=15)
    # A stream follows a run at most this long, then ends without ``done``: the client resumes
    # with Last-Event-ID (below the streaming function's 900 s timeout).
    workflow_stream_follow_s: float = Field(default=840.0, gt=0, le=880)
    # An iteration over more items than this runs through the interpreter's Distributed Map
    # (docs/adr/0038-long-iterations-distributed-map.md); up to it, in its node's invocation.
    workflow_iteration_inline_items: int = Field(default=200, ge=1, le=1000)
    # Items per child execution of that Map when the iteration's children are all cheap
    # (inline) nodes; an iteration with any slower child runs one item per child execution.
    workflow_iteration_batch_items: int = Field(default=50, ge=1, le=500)
    # The fetch function HTTP-request nodes go through (set by CDK); unset (locally): in-process
    # through the same egress policy (docs/workflows-http-requests.md).
    workflow_fetch_function_name: str | None = None
    # The code sandbox function (docs/adr/0032-code-sandbox.md); unset: code nodes run in a local
    # child process. Only the sandbox function sets the directory it empties after every run.
    workflow_code_function_name: str | None = None
    workflow_code_wipe_dir: str | None = None

    # Tools (docs/tools.md). The MCP function MCP servers are called through (set by CDK); unset
    # (locally): in-process through the same egress policy.
    tools_mcp_function_name: str | None = None

    # Chat (docs/adr/0027-chat.md). An idle stream gets a heartbeat at least this often.
    chat_heartbeat_s: float = Field(default=10.0, gt=0, le=15)
    # A running answer saves what it holds this often (and so shows the reaper it is alive).
    chat_checkpoint_s: float = Field(default=2.0, gt=0, le=60)
    # A turn's events stay replayable this long.
    chat_events_ttl_s: int = Field(default=86_400, ge=60)
    # The reaper fails a running answer that has written nothing for this long.
    chat_stuck_after_s: int = Field(default=300, ge=30)
    # A turn paused on client tools waits this long for their outputs, then fails (docs/tools.md).
    chat_tool_outputs_ttl_s: int = Field(default=600, ge=10, le=86_400)

    log_level: str = "INFO"
    powertools_metrics_disabled: bool = False

    @field_validator("stratus_egress_allow")
    @classmethod
    def _egress_allow_parses(cls, value: str) -> str:
        # A typo in the allow-list fails the cold start, not the first tenant call.
        from shared.egress import EgressPolicy

        EgressPolicy.parse(value)
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def environment_value(name: str) -> str | None:
    """The deployment's value for a model connection's ``env:NAME`` reference. The one place
    outside the settings model that reads the environment: which variables matter is data
    (the model catalog), not code."""
    import os

    value = os.environ.get(name)
    return value or None


def reset_settings() -> None:
    """Forget the cached settings (the local runtime and tests change the environment)."""
    get_settings.cache_clear()


# --- What a function's catalog entry requires --------------------------------------------


def env_variable(name: str, suffix: str) -> str:
    """``admin-token``, ``SECRET_ARN`` → ``ADMIN_TOKEN_SECRET_ARN`` (a Settings field, upper-cased)."""
    return f"{re.sub(r'[^A-Za-z0-9]+', '_', name).upper()}_{suffix}"


@dataclass(frozen=True)
class Required:
    """An environment variable (a Settings field, upper-cased) a function needs in AWS because
    of one of its catalog accesses; with ``when``, only while another setting has a value."""

    variable: str
    access: str
    when: tuple[str, str] | None = None

    @property
    def field(self) -> str:
        return self.variable.lower()


# Access kind → variables, ``{name}`` being the access's resource name. The one mapping: CDK sets
# each of these (and refuses to synth a function without one), the function checks them at
# cold start. Bedrock, a state machine's child executions: nothing to configure.
_BY_KIND: dict[str, tuple[tuple[str, tuple[str, str] | None], ...]] = {
    # In AWS the credentials come from Secrets Manager; the name has a default.
    "database": (("DATABASE_SECRET_ARN", None), ("DATABASE_HOST", None), ("DATABASE_NAME", None)),
    "database_admin": (("DATABASE_ADMIN_SECRET_ARN", None), ("DATABASE_SECRET_ARN", None),
                       ("DATABASE_NAME", None)),
    "redis": (("REDIS_URL", None), ("REDIS_USER", None), ("REDIS_SECRET_ARN", None)),
    "bucket": (("{name}_BUCKET", None),),
    "state_machine": (("{name}_STATE_MACHINE_ARN", None),),
    "queue": (("{name}_QUEUE_URL", None),),
    "secret": (("{name}_SECRET_ARN", None),),
    "kms": (("{name}_KMS_KEY_ID", None),),
    "function": (("{name}_FUNCTION_NAME", None),),
    "opensearch": (("VECTOR_STORE", None), ("OPENSEARCH_URL", ("vector_store", "opensearch")),
                   ("OPENSEARCH_SIGV4_SERVICE", ("vector_store", "opensearch"))),
    "bedrock": (),
}


def access_settings(access: Access) -> tuple[Required, ...]:
    try:
        templates = _BY_KIND[access.kind]
    except KeyError:
        raise ValueError(f"no settings known for access {access.resource!r}") from None
    prefix = env_variable(access.name, "")[:-1] if access.name else ""
    return tuple(Required(template.replace("{name}", prefix), access.resource, when)
                 for template, when in templates)


# What the trigger itself requires: an edge-facing function (HTTP API route, authorizer,
# function URL) checks CloudFront's origin header, so it must know the secret in AWS.
ORIGIN_SECRET_ARN = "ORIGIN_SECRET_ARN"  # noqa: S105 - a variable name, not a secret
EDGE_ACCESS = "the edge's origin header"


def trigger_settings(function: Function) -> tuple[Required, ...]:
    from shared.catalog import Authorizer, DefaultRoute, FunctionUrl, Http

    if isinstance(function.trigger, (Http, DefaultRoute, Authorizer, FunctionUrl)):
        return (Required(ORIGIN_SECRET_ARN, EDGE_ACCESS),)
    return ()


def required_settings(function: Function) -> tuple[Required, ...]:
    """Every setting ``function``'s catalog entry requires in AWS, without repeats."""
    seen: dict[str, Required] = {r.variable: r for r in trigger_settings(function)}
    for access in function.access:
        for required in access_settings(access):
            seen.setdefault(required.variable, required)
    return tuple(seen.values())


class MissingSettings(RuntimeError):
    """A function started without a setting its catalog entry requires."""

    def __init__(self, function: str, missing: list[Required]) -> None:
        listed = ", ".join(f"{r.variable} (for {r.access})" for r in missing)
        super().__init__(f"function {function} cannot start: environment variable {listed} is not set; "
                         "its catalog entry requires it (infra/functions.py sets it in AWS)")
        self.variables = [r.variable for r in missing]


def missing_settings(function: Function, settings: Settings) -> list[Required]:
    def unset(field: str) -> bool:
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return value is None or value == ""

    return [r for r in required_settings(function)
            if (r.when is None or getattr(settings, r.when[0]) == r.when[1]) and unset(r.field)]


def check_settings(function: Function, settings: Settings | None = None) -> None:
    """Raise MissingSettings naming every required variable that is not set."""
    missing = missing_settings(function, settings or get_settings())
    if missing:
        raise MissingSettings(function.name, missing)


def check_entry_settings(function: Function, settings: Settings | None = None) -> None:
    """The cold-start check of an app that knows its entry (the streaming apps): as
    ``check_function_settings``, only in a deployed function."""
    settings = settings or get_settings()
    if settings.stratus_runtime == "lambda":
        check_settings(function, settings)


def check_function_settings(settings: Settings | None = None) -> None:
    """The cold-start check of a deployed function (``STRATUS_RUNTIME=lambda``): the entry named
    by ``STRATUS_FUNCTION`` has every setting it requires. The local runtime provides embedded
    defaults (PostgreSQL URL, in-process cache, inline ingestion) instead, so nothing is
    required there."""
    settings = settings or get_settings()
    if settings.stratus_runtime != "lambda":
        return
    if not settings.stratus_function:
        raise MissingSettings("(unnamed)", [Required("STRATUS_FUNCTION", "the catalog entry")])
    from shared.catalog import registered_entry

    check_settings(registered_entry(settings.stratus_function), settings)
