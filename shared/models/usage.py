"""Usage accounting and per-tenant token quotas.

Every gateway call is recorded in PostgreSQL (the source of truth for reports). The month's
running total also lives in a cache counter so the quota check before each call costs one
read; a cold counter is rebuilt from the records."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.cache.ports import KeyValueStore
from shared.db.database import Database
from shared.errors import StratusError
from shared.ids import new_id
from shared.models import repository as repo
from shared.models.api import Quota, QuotaStatus, UsageGroup, UsageReport
from shared.tenancy.contract import TenantDirectory

# The running total is rebuilt from the records this often, so a race between a rebuild and
# a concurrent call (whose tokens the rebuild missed) is corrected within minutes.
_COUNTER_TTL_S = 600
_LIMITS_TTL_S = 60


class QuotaExceeded(StratusError):
    code, status, default_message = "quota_exceeded", 429, "The tenant's monthly token quota is used up"


@dataclass(frozen=True)
class QuotaCheck:
    used: int
    soft_limit: int | None
    hard_limit: int | None

    @property
    def soft_exceeded(self) -> bool:
        return self.soft_limit is not None and self.used >= self.soft_limit

    def warning_header(self) -> dict[str, str]:
        """Sent with answers once the soft quota is passed."""
        if not self.soft_exceeded:
            return {}
        return {"X-Stratus-Quota-Warning": f"monthly tokens {self.used} of soft limit {self.soft_limit}"}


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(now: datetime) -> datetime:
    return (month_start(now) + timedelta(days=32)).replace(day=1)


class UsageService:
    def __init__(self, db: Database, kv: KeyValueStore,
                 tenants: Callable[[], TenantDirectory] | None = None) -> None:
        """``tenants``: where quotas look tenants up (only ``set_quota`` needs it)."""
        self._db = db
        self._kv = kv
        self._tenants = tenants

    # Keys share the tenant's hash tag (one slot per tenant).
    @staticmethod
    def _counter_key(tenant_id: uuid.UUID, now: datetime) -> str:
        return f"quota:{{{tenant_id}}}:{now.astimezone(UTC):%Y%m}"

    @staticmethod
    def _limits_key(tenant_id: uuid.UUID) -> str:
        return f"quota:{{{tenant_id}}}:limits"

    def _limits(self, tenant_id: uuid.UUID) -> tuple[int | None, int | None]:
        cached = self._kv.get(self._limits_key(tenant_id))
        if cached is not None:
            soft, hard = json.loads(cached)
            return soft, hard
        with self._db.transaction(tenant_id) as conn:
            row = repo.get_quota(conn, tenant_id)
        limits = (row["monthly_tokens_soft"], row["monthly_tokens_hard"]) if row else (None, None)
        self._kv.set(self._limits_key(tenant_id), json.dumps(limits), ttl_s=_LIMITS_TTL_S)
        return limits

    def _used(self, tenant_id: uuid.UUID, now: datetime) -> int:
        key = self._counter_key(tenant_id, now)
        value = self._kv.get(key)
        if value is None:
            with self._db.transaction(tenant_id) as conn:
                total = repo.tokens_since(conn, tenant_id, month_start(now))
            # Another container may have initialised it meanwhile: only the first writer wins.
            self._kv.set(key, str(total), ttl_s=_COUNTER_TTL_S, only_if_absent=True)
            value = self._kv.get(key) or str(total)
        return int(value)

    def check_quota(self, tenant_id: uuid.UUID, now: datetime | None = None) -> QuotaCheck:
        """Before a call: raises QuotaExceeded over the hard limit."""
        now = now or datetime.now(UTC)
        soft, hard = self._limits(tenant_id)
        if soft is None and hard is None:
            return QuotaCheck(0, None, None)
        used = self._used(tenant_id, now)
        if hard is not None and used >= hard:
            retry_after = int((next_month(now) - now).total_seconds()) + 1
            raise QuotaExceeded(details={"used": used, "monthly_tokens_hard": hard},
                                headers={"Retry-After": str(retry_after)})
        return QuotaCheck(used, soft, hard)

    def record(self, *, tenant_id: uuid.UUID, model_name: str, call_type: str, input_tokens: int,
               output_tokens: int, estimated: bool, latency_ms: int, cost: Decimal, outcome: str,
               now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        with self._db.transaction(tenant_id) as conn:
            repo.insert_usage(conn, record_id=new_id(), tenant_id=tenant_id, model_name=model_name,
                              call_type=call_type, input_tokens=input_tokens, output_tokens=output_tokens,
                              estimated=estimated, latency_ms=latency_ms, cost=cost, outcome=outcome)
        tokens = input_tokens + output_tokens
        key = self._counter_key(tenant_id, now)
        # Only a live counter is advanced; a missing one is rebuilt from the records.
        if tokens and self._kv.get(key) is not None:
            self._kv.incr(key, tokens)

    def report(self, tenant_id: uuid.UUID, start: datetime, end: datetime, group_by: str) -> UsageReport:
        with self._db.transaction(tenant_id) as conn:
            rows = repo.usage_aggregate(conn, tenant_id, start, end, group_by)
            quota = repo.get_quota(conn, tenant_id)
            used = repo.tokens_since(conn, tenant_id, month_start(datetime.now(UTC)))
        groups = [UsageGroup(**row) for row in rows]
        return UsageReport(
            period_start=start, period_end=end, group_by=group_by,  # type: ignore[arg-type]
            groups=groups,
            total_input_tokens=sum(g.input_tokens for g in groups),
            total_output_tokens=sum(g.output_tokens for g in groups),
            total_cost=sum((g.cost for g in groups), Decimal(0)),
            quota=QuotaStatus(monthly_tokens_soft=quota["monthly_tokens_soft"] if quota else None,
                              monthly_tokens_hard=quota["monthly_tokens_hard"] if quota else None,
                              used_this_month=used))

    def set_quota(self, tenant_id: uuid.UUID, soft: int | None, hard: int | None) -> Quota:
        from shared.errors import NotFound, ValidationFailed

        if soft is not None and hard is not None and soft > hard:
            raise ValidationFailed(details={"fields": [{"field": "body.monthly_tokens_soft", "type": "quota_order",
                                                        "message": "the soft limit cannot exceed the hard limit"}]})
        if self._tenants is None:
            raise RuntimeError("UsageService was built without a tenant directory")
        if not self._tenants().tenant_exists(tenant_id):
            raise NotFound("Tenant not found", code="tenant_not_found")
        # Checked apart from the write: a tenant deleted in between keeps a quota row it never uses.
        with self._db.transaction(tenant_id) as conn:
            row = repo.upsert_quota(conn, tenant_id, soft, hard)
        self._kv.delete(self._limits_key(tenant_id))
        return Quota(tenant_id=tenant_id, **row)
