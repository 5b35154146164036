"""Settings of the local runtime itself (the functions read shared.config)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class LocalSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    stratus_state_dir: Path = Path(".stratus")
    # An existing PostgreSQL (owner connection); unset: embedded PostgreSQL under the state dir.
    database_url: SecretStr | None = None
    stratus_admin_token: SecretStr | None = None
    # Port of the in-process moto server; 0 picks a free one.
    stratus_aws_port: int = Field(default=0, ge=0, le=65535)
    log_level: str = "INFO"
