"""Settings read from the environment once per container and validated at cold start.

Code never reads ``os.environ`` itself: it asks :func:`get_settings`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    # "lambda": one database connection per container; "local": a pool shared by the
    # local runtime's threads.
    stratus_runtime: Literal["lambda", "local"] = "lambda"
    stratus_stage: str = "dev"

    # Application connection (non-owner role, row-level security applies).
    database_url: SecretStr | None = None
    # In AWS the credentials come from Secrets Manager through the Parameters and
    # Secrets Lambda Extension; these name the secrets.
    database_secret_arn: str | None = None
    database_admin_secret_arn: str | None = None
    admin_token_secret_arn: str | None = None
    database_host: str | None = None
    database_name: str = "stratus"
    db_pool_max: int = Field(default=16, ge=1, le=256)
    db_connect_timeout_s: int = Field(default=5, ge=1, le=60)

    redis_url: SecretStr | None = None
    # ElastiCache Serverless only speaks cluster mode.
    redis_cluster: bool = True

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
    payloads_bucket: str | None = None
    purge_state_machine_arn: str | None = None

    # The Parameters and Secrets Lambda Extension listens on this port.
    parameters_secrets_extension_http_port: int = 2773
    aws_session_token: SecretStr | None = None

    # Model gateway. Platform defaults apply when a tenant has chosen none.
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

    # Chat (docs/adr/0027-chat.md). An idle stream gets a heartbeat at least this often.
    chat_heartbeat_s: float = Field(default=10.0, gt=0, le=15)
    # A running answer saves what it holds this often (and so shows the reaper it is alive).
    chat_checkpoint_s: float = Field(default=2.0, gt=0, le=60)
    # A turn's events stay replayable this long.
    chat_events_ttl_s: int = Field(default=86_400, ge=60)
    # The reaper fails a running answer that has written nothing for this long.
    chat_stuck_after_s: int = Field(default=300, ge=30)

    log_level: str = "INFO"
    powertools_metrics_disabled: bool = False


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
