"""Deployment settings: one profile per stage in ``cdk.json`` (``context.stages.<stage>``),
validated by a pydantic model.

The stage is ``context.stage`` (``dev`` unless ``-c stage=prod``); its profile comes from
``context.stages`` (a stage without one takes ``dev``'s, so a personal stage such as
``alice`` needs nothing more); a top-level context key of the same name (``-c key=value``)
overrides the profile for one synth. Values given on the command line arrive as strings:
the model parses them (pydantic's lax mode, plus the list readers below).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_cdk import aws_logs as logs
from constructs import Node
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

if TYPE_CHECKING:
    from infra.capacity import Budget

_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
_ENGINE_VERSION = re.compile(r"^\d+\.\d+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
VECTOR_STORES = ("postgres", "opensearch")
# The stage whose profile a stage without its own takes.
DEFAULT_PROFILE = "dev"
# The VPC spans this many availability zones; a production stage has a NAT gateway in each.
AVAILABILITY_ZONES = 2

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


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


class StratusConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str = "dev"
    # A production stage: every setting below that protects data or people must be on
    # (checked here, so a prod synth with one missing fails with the list of what is).
    production: bool = False
    # API Gateway's authorizer result cache; 0 turns caching off (and the identity source
    # with it, so the authorizer runs on every request, header or not).
    authorizer_cache_ttl_s: int = 300
    log_level: str = "INFO"
    log_retention_days: int = 30
    aurora_min_acu: float = 0.5
    aurora_max_acu: float = 4.0
    aurora_readers: int = 0
    # Turned on once the whole stack exists (infra/migrations.py), never at the cluster's
    # creation: a failed first deploy must be able to roll the cluster back.
    deletion_protection: bool = True
    # CloudFormation refuses to delete the root stack while this is on.
    termination_protection: bool = False
    # The database, admin-token and provider-keys secrets outlive the stack (RETAIN).
    retain_secrets: bool = False
    # NAT gateways: 1 (cheap, provider calls fail while its AZ is down) or one per AZ.
    nat_gateways: int = 1
    # Origins allowed to PUT/POST presigned uploads from a browser.
    upload_cors_origins: tuple[str, ...] = ("*",)
    # Alarm thresholds. Pinned proxy sessions are expected (per-transaction tenant settings
    # pin them, docs/architecture.md §2.6); the alarm fires when they approach the connection budget.
    pinned_sessions_alarm: int = 100
    acu_utilization_alarm_percent: float = 90.0
    # Errors of one function in five minutes that raise its alarm (1 in dev: every error is
    # news; more in prod, where a handful of provider timeouts an hour is weather).
    function_errors_alarm: int = 1
    # Percent of a function's timeout its p99 duration may reach before the alarm.
    duration_alarm_percent: float = 80.0
    # Seconds the oldest message of a work queue may wait.
    queue_age_alarm_s: int = 900
    # CloudFront 5xx rate (percent of requests) that raises the alarm.
    edge_5xx_alarm_percent: float = 5.0
    # Valkey: stored bytes (percent of the cache's data-storage limit) and ECPU per second.
    cache_storage_alarm_percent: float = 80.0
    cache_ecpu_alarm_per_s: int = 50000
    # RDS Proxy: milliseconds a client waits to borrow a database connection (the pool is
    # exhausted well before the borrow timeout when this climbs).
    proxy_borrow_latency_alarm_ms: int = 100
    api_throttle_rate: int = 200
    api_throttle_burst: int = 400
    # Who gets the alarms (an SNS e-mail subscription); required for a production stage.
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
    # A CloudFront WAF (rate-based rule per client IP, AWS managed common rules): a web ACL ARN
    # made in us-east-1 (waf_web_acl_arn), or waf=true to make it in this stack, which must then
    # be deployed in us-east-1 (docs/adr/0047).
    waf: bool = False
    waf_web_acl_arn: str | None = None
    # Requests per client IP in any 5 minutes before the WAF blocks it.
    waf_rate_limit: int = 2000
    # The origin secret's version CloudFront sends (its VersionId). CloudFormation re-reads a
    # dynamic reference only when the template changes, so a rotation names the new version
    # here and deploys (README, "Rotating the origin secret"); None: the version current at the
    # distribution's last update.
    origin_secret_version: str | None = None

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: Any) -> tuple[tuple[str, int | None], ...]:
        """{"streaming": 100} from cdk.json, or '{"streaming": 100}' from the command line."""
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, Mapping):
            value = value.items()
        return tuple(sorted((str(k), None if v is None else int(v)) for k, v in value))

    @field_validator("waf_web_acl_arn", mode="before")
    @classmethod
    def _web_acl(cls, value: Any) -> str | None:
        return str(value).strip() or None if value is not None else None

    @field_validator("origin_secret_version", mode="before")
    @classmethod
    def _secret_version(cls, value: Any) -> str | None:
        version = str(value).strip() if value is not None else ""
        if version and not re.fullmatch(r"[A-Za-z0-9-]{32,64}", version):
            raise ValueError("origin_secret_version must be a Secrets Manager VersionId (32-64 letters, digits, -)")
        return version or None

    @field_validator("upload_cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> tuple[str, ...]:
        return _strings(value)

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _egress(cls, value: Any) -> str:
        return ",".join(_strings(value))

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> str:
        return str(value).upper()

    @field_validator("vector_store", mode="before")
    @classmethod
    def _store(cls, value: Any) -> str:
        return str(value).strip().lower()

    @field_validator("alarm_email", mode="before")
    @classmethod
    def _email(cls, value: Any) -> str | None:
        return str(value).strip() or None if value is not None else None

    @model_validator(mode="after")
    def _check(self) -> StratusConfig:
        if not _STAGE.match(self.stage):
            raise ValueError(f"stage {self.stage!r} must match {_STAGE.pattern}")
        if not 0 <= self.authorizer_cache_ttl_s <= 3600:
            raise ValueError("authorizer_cache_ttl_s must be between 0 and 3600 (API Gateway's limit)")
        if self.log_retention_days not in _RETENTIONS:
            raise ValueError(f"log_retention_days must be one of {sorted(_RETENTIONS)}")
        if not 0.5 <= self.aurora_min_acu <= self.aurora_max_acu <= 256:
            raise ValueError("need 0.5 <= aurora_min_acu <= aurora_max_acu <= 256")
        if not 0 <= self.aurora_readers <= 15:
            raise ValueError("aurora_readers must be between 0 and 15")
        if not 1 <= self.nat_gateways <= AVAILABILITY_ZONES:
            raise ValueError(f"nat_gateways must be between 1 and {AVAILABILITY_ZONES} (one per AZ)")
        if self.function_errors_alarm < 1 or not 10 <= self.duration_alarm_percent <= 100:
            raise ValueError("function_errors_alarm must be >= 1 and duration_alarm_percent within 10..100")
        if self.alarm_email is not None and not _EMAIL.match(self.alarm_email):
            raise ValueError(f"alarm_email {self.alarm_email!r} is not an e-mail address")
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
        if self.production:
            missing = self.production_gaps()
            if missing:
                raise ValueError(f"stage {self.stage!r} is a production stage (cdk.json context.stages."
                                 f"{self.stage}.production); set in its profile: " + "; ".join(missing))
        # A typo fails the synth, not every function's cold start.
        from shared.egress import EgressPolicy

        try:
            EgressPolicy.parse(self.egress_allow)
        except ValueError as exc:
            raise ValueError(f"egress_allow: {exc}") from None
        return self

    def production_gaps(self) -> list[str]:
        """What a production stage lacks, each as the setting to give it."""
        gaps = []
        if not self.alarm_email:
            gaps.append("alarm_email (who is told when an alarm fires)")
        if not self.upload_cors_origins or "*" in self.upload_cors_origins:
            gaps.append("upload_cors_origins (the web app's origins, not '*')")
        if self.nat_gateways < AVAILABILITY_ZONES:
            gaps.append(f"nat_gateways: {AVAILABILITY_ZONES} (one per AZ)")
        if self.aurora_readers < 1:
            gaps.append("aurora_readers: 1 or more (a failover target in another AZ)")
        if not self.deletion_protection:
            gaps.append("deletion_protection: true")
        if not self.termination_protection:
            gaps.append("termination_protection: true")
        if not self.retain_secrets:
            gaps.append("retain_secrets: true")
        return gaps

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
    def from_values(cls, context: Mapping[str, Any]) -> StratusConfig:
        """The stage's profile from ``context['stages']``, overridden by top-level keys."""
        stage = str(context.get("stage") or DEFAULT_PROFILE)
        profiles = context.get("stages") or {}
        if not isinstance(profiles, Mapping):
            raise ValueError("context.stages must map stage names to profiles")
        profile = profiles.get(stage, profiles.get(DEFAULT_PROFILE, {}))
        overrides = {key: value for key, value in context.items() if key in cls.model_fields and key != "stage"}
        return cls(**{**profile, **overrides, "stage": stage})

    @classmethod
    def from_context(cls, node: Node) -> StratusConfig:
        keys = ["stage", "stages", *cls.model_fields]
        return cls.from_values({key: value for key in keys if (value := node.try_get_context(key)) is not None})
