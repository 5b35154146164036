"""Deployment settings, read from CDK context (``cdk.json`` or ``cdk synth -c key=value``).

Values given on the command line arrive as strings, so every reader parses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import aws_logs as logs
from constructs import Node

if TYPE_CHECKING:
    from infra.capacity import Budget

_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
_ENGINE_VERSION = re.compile(r"^\d+\.\d+$")
VECTOR_STORES = ("postgres", "opensearch")

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


def _concurrency(value: Any) -> tuple[tuple[str, int | None], ...]:
    """{"streaming": 100} from cdk.json, or '{"streaming": 100}' from the command line."""
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError("concurrency must be an object of class → reserved concurrency")
    return tuple(sorted((str(k), None if v is None else int(v)) for k, v in value.items()))


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
    # pin them, docs/architecture.md §2.6); the alarm fires when they approach the connection budget.
    pinned_sessions_alarm: int = 100
    acu_utilization_alarm_percent: float = 90.0
    api_throttle_rate: int = 200
    api_throttle_burst: int = 400
    alarm_email: str | None = None
    # Where knowledge-base vectors live: "postgres" (pgvector in Aurora, nothing more to run)
    # or "opensearch" (a managed OpenSearch domain in the VPC; docs/adr/0023).
    vector_store: str = "postgres"
    # The OpenSearch domain, when vector_store is "opensearch".
    opensearch_engine_version: str = "3.3"
    opensearch_instance_type: str = "r7g.large.search"
    opensearch_data_nodes: int = 2
    # Dedicated cluster-manager (master) nodes: 0 (none) or 3 (AWS's advice for production).
    opensearch_master_nodes: int = 0
    opensearch_master_instance_type: str = "m7g.large.search"
    opensearch_volume_gb: int = 20
    # Spread data nodes over two availability zones (the VPC's two private subnets).
    opensearch_zone_awareness: bool = True
    # STRATUS_EGRESS_ALLOW of every function: otherwise refused destinations tenant URLs (model
    # endpoints, HTTP-request nodes) may reach, comma-separated hosts and CIDRs (an on-premise
    # vLLM, an intranet API). Empty: public addresses only (docs/adr/0030-egress-policy.md).
    egress_allow: str = ""
    # The concurrency budget (infra/capacity.py, docs/adr/0047): per-class overrides of the reserved
    # concurrency ({"streaming": 100, "http_allowance": 400}); the database's max_connections
    # (None: from the Aurora formula at aurora_max_acu); the proxy's share of it; the account's
    # Lambda concurrency limit.
    concurrency: tuple[tuple[str, int | None], ...] = ()
    database_max_connections: int | None = None
    proxy_max_connections_percent: int = 80
    lambda_account_concurrency: int = 1000
    # A CloudFront WAF (rate-based rule per client IP, AWS managed common rules): a WebACL ARN
    # made in us-east-1 (waf_web_acl_arn), or waf=true to make it in this stack, which must then
    # be deployed in us-east-1 (docs/adr/0047).
    waf: bool = False
    waf_web_acl_arn: str | None = None
    # Requests per client IP in any 5 minutes before the WAF blocks it.
    waf_rate_limit: int = 2000

    def __post_init__(self) -> None:
        if not _STAGE.match(self.stage):
            raise ValueError(f"stage {self.stage!r} must match {_STAGE.pattern}")
        if not 0 <= self.authorizer_cache_ttl_s <= 3600:
            raise ValueError("authorizer_cache_ttl_s must be between 0 and 3600 (API Gateway's limit)")
        if self.log_retention_days not in _RETENTIONS:
            raise ValueError(f"log_retention_days must be one of {sorted(_RETENTIONS)}")
        if not 0.5 <= self.aurora_min_acu <= self.aurora_max_acu <= 256:
            raise ValueError("need 0.5 <= aurora_min_acu <= aurora_max_acu <= 256")
        if self.vector_store not in VECTOR_STORES:
            raise ValueError(f"vector_store must be one of {VECTOR_STORES}, not {self.vector_store!r}")
        if not _ENGINE_VERSION.match(self.opensearch_engine_version):
            raise ValueError(f"opensearch_engine_version {self.opensearch_engine_version!r} must look like 3.3")
        if self.opensearch_master_nodes not in (0, 3, 5):
            raise ValueError("opensearch_master_nodes must be 0, 3 or 5")
        if self.opensearch_data_nodes < 1 or (self.opensearch_zone_awareness and self.opensearch_data_nodes % 2):
            raise ValueError("opensearch_data_nodes must be at least 1, and even with zone awareness (two zones)")
        if not 10 <= self.opensearch_volume_gb <= 16384:
            raise ValueError("opensearch_volume_gb must be between 10 and 16384")
        if not 1 <= self.proxy_max_connections_percent <= 100:
            raise ValueError("proxy_max_connections_percent must be between 1 and 100")
        if not 100 <= self.waf_rate_limit <= 2_000_000_000:
            raise ValueError("waf_rate_limit must be at least 100 (WAF's minimum per 5 minutes)")
        self.budget  # noqa: B018 - an unknown class fails the synth here
        # A typo fails the synth, not every function's cold start.
        from shared.egress import EgressPolicy

        try:
            EgressPolicy.parse(self.egress_allow)
        except ValueError as exc:
            raise ValueError(f"egress_allow: {exc}") from None

    @property
    def opensearch(self) -> bool:
        return self.vector_store == "opensearch"

    @property
    def budget(self) -> Budget:
        from infra.capacity import Budget, aurora_max_connections

        return Budget.from_overrides(
            dict(self.concurrency),
            database_max_connections=(self.database_max_connections
                                      or aurora_max_connections(self.aurora_min_acu, self.aurora_max_acu)),
            proxy_max_connections_percent=self.proxy_max_connections_percent,
            account_concurrency=self.lambda_account_concurrency)

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
            "vector_store": lambda v: str(v).strip().lower(),
            "opensearch_engine_version": str,
            "opensearch_instance_type": str,
            "opensearch_data_nodes": int,
            "opensearch_master_nodes": int,
            "opensearch_master_instance_type": str,
            "opensearch_volume_gb": int,
            "opensearch_zone_awareness": _bool,
            "egress_allow": lambda v: ",".join(_strings(v)),
            "concurrency": _concurrency,
            "database_max_connections": int,
            "proxy_max_connections_percent": int,
            "lambda_account_concurrency": int,
            "waf": _bool,
            "waf_web_acl_arn": lambda v: str(v) or None,
            "waf_rate_limit": int,
        }
        for key, parse in readers.items():
            raw = get(key)
            values[key] = getattr(defaults, key) if raw is None else parse(raw)
        return cls(**values)
