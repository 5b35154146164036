"""Usage amounts are JSON numbers: a Decimal read from numeric(20, 10) would otherwise be
written as a string, "0E-10" for nothing at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from shared.models.api import QuotaStatus, UsageGroup, UsageReport


def test_cost_is_a_json_number_in_fixed_notation() -> None:
    group = UsageGroup(key="m", calls=1, failed_calls=0, input_tokens=1, output_tokens=1, includes_estimates=False,
                       cost=Decimal("0E-10"), avg_latency_ms=5)
    report = UsageReport(period_start=datetime(2026, 1, 1, tzinfo=UTC), period_end=datetime(2026, 2, 1, tzinfo=UTC),
                         group_by="model", groups=[group], total_input_tokens=1, total_output_tokens=1,
                         total_cost=Decimal("12.3456789012"), quota=QuotaStatus(monthly_tokens_soft=None,
                                                                                monthly_tokens_hard=None,
                                                                                used_this_month=0))
    body = report.model_dump(mode="json")
    assert body["groups"][0]["cost"] == 0 and isinstance(body["groups"][0]["cost"], float)
    assert body["total_cost"] == 12.3456789012
    assert '"cost":0.0' in json.dumps(body, separators=(",", ":"))
    # Python code keeps the exact Decimal.
    assert report.total_cost == Decimal("12.3456789012")
