"""GET /api/v1/usage?from=&to=&group_by=model|day — token usage and cost aggregates."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.errors import ValidationFailed
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import Envelope
from shared.http.params import IsoDatetime
from shared.models.api import UsageGrouping, UsageReport
from shared.models.wiring import usage_service

app = http_app(function_for_module(__name__))

_MAX_RANGE = timedelta(days=366)


def _utc(value: datetime) -> datetime:
    # A time without a zone is read as UTC, the zone of every stored timestamp.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@app.endpoint
def get_usage(from_: Annotated[IsoDatetime | None, Query(alias="from")] = None,
              to: Annotated[IsoDatetime | None, Query()] = None,
              group_by: Annotated[UsageGrouping, Query()] = "model") -> Response[Envelope[UsageReport]]:
    try:
        end = _utc(to) if to else datetime.now(UTC)
        start = _utc(from_) if from_ else end - timedelta(days=30)
    except OverflowError:
        start = end = datetime.now(UTC)  # dates at the edge of the calendar: reported below
    if start >= end or end - start > _MAX_RANGE:
        raise ValidationFailed(details={"fields": [{"field": "query.from", "type": "range",
                                                    "message": "from must be before to, at most 366 days apart"}]})
    return app.ok(usage_service().report(current_principal().tenant, start, end, group_by))


handler = app.lambda_handler()
