"""GET /health — liveness and database reachability (no auth); the answer is reused for a few
seconds per container, so probes do not reach the database on every call."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.db.database import get_database
from shared.http.api import http_app
from shared.http.envelope import Envelope
from shared.platform.health import Health, HealthCache

app = http_app(function_for_module(__name__))
_health = HealthCache()


@app.endpoint
def health() -> Response[Envelope[Health]]:
    return app.ok(_health.check(get_database()))


handler = app.lambda_handler()
