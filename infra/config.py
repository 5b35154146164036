"""Deployment settings, read from CDK context (``cdk.json`` or ``cdk synth -c key=value``).

Values given on the command line arrive as strings, so every reader parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_logs as logs
from constructs import Node

_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,15}$")

# Every log group's retention: long enough to investigate an incident, short enough to
# keep CloudWatch costs flat.
_RETENTIONS = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


@dataclass(frozen=True)
class StratusConfig:
    stage: str = "dev"
    # API Gateway's authorizer result cache; 0 turns caching off (and the identity source
    # with it, so the authorizer runs on every request, header or not).
    authorizer_cache_ttl_s: int = 300
    log_level: str = "INFO"
    log_retention_days: int = 30
    aurora_min_acu: float = 0.5
    aurora_max_acu: float = 4.0
    aurora_readers: int = 0
    deletion_protection: bool = True
    # Origins allowed to PUT/POST presigned uploads from a browser.
    upload_cors_origins: tuple[str, ...] = ("*",)
    # Alarm thresholds. Pinned proxy sessions are expected (per-transaction tenant settings
    # pin them, DESIGN §2); the alarm fires when they approach the connection budget.
    pinned_sessions_alarm: int = 100
    acu_utilization_alarm_percent: float = 90.0
    api_throttle_rate: int = 200
    api_throttle_burst: int = 400
    alarm_email: str | None = None

    def __post_init__(self) -> None:
        if not _STAGE.match(self.stage):
            raise ValueError(f"stage {self.stage!r} must match {_STAGE.pattern}")
        if not 0 <= self.authorizer_cache_ttl_s <= 3600:
            raise ValueError("authorizer_cache_ttl_s must be between 0 and 3600 (API Gateway's limit)")
        if self.log_retention_days not in _RETENTIONS:
            raise ValueError(f"log_retention_days must be one of {sorted(_RETENTIONS)}")
        if not 0.5 <= self.aurora_min_acu <= self.aurora_max_acu <= 256:
            raise ValueError("need 0.5 <= aurora_min_acu <= aurora_max_acu <= 256")

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTIONS[self.log_retention_days]

    @property
    def prefix(self) -> str:
        """Prefix of the few physical names we set (cache, cluster), unique per stage."""
        return f"stratus-{self.stage}"

    @classmethod
    def from_context(cls, node: Node) -> StratusConfig:
        def get(key: str) -> Any:
            return node.try_get_context(key)

        defaults = cls()
        values: dict[str, Any] = {}
        readers: dict[str, Any] = {
            "stage": str,
            "authorizer_cache_ttl_s": int,
            "log_level": lambda v: str(v).upper(),
            "log_retention_days": int,
            "aurora_min_acu": float,
            "aurora_max_acu": float,
            "aurora_readers": int,
            "deletion_protection": _bool,
            "upload_cors_origins": _strings,
            "pinned_sessions_alarm": int,
            "acu_utilization_alarm_percent": float,
            "api_throttle_rate": int,
            "api_throttle_burst": int,
            "alarm_email": lambda v: str(v) or None,
        }
        for key, parse in readers.items():
            raw = get(key)
            values[key] = getattr(defaults, key) if raw is None else parse(raw)
        return cls(**values)
