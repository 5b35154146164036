"""CloudWatch metrics of chat turns (embedded metric format on stdout, as Powertools writes
them): turns by status, time to first token and whole-turn time. Each turn writes its own
record, so turns on different threads never share dimensions."""

from __future__ import annotations

from shared.conversations.contract import MessageOut


def record_turn(answer: MessageOut) -> None:
    from shared.config import get_settings

    if get_settings().powertools_metrics_disabled:
        return
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    from shared.observability import SERVICE

    # Ephemeral: its own state, unlike the shared Metrics instance (turns run on threads).
    metrics = EphemeralMetrics(namespace="Stratus", service=SERVICE)
    metrics.add_dimension("status", answer.status)
    metrics.add_metric("ChatTurns", MetricUnit.Count, 1)
    latency = answer.latency or {}
    if isinstance(latency.get("first_token_ms"), int):
        metrics.add_metric("ChatFirstTokenMs", MetricUnit.Milliseconds, latency["first_token_ms"])
    if isinstance(latency.get("total_ms"), int):
        metrics.add_metric("ChatTurnMs", MetricUnit.Milliseconds, latency["total_ms"])
    metrics.flush_metrics()
