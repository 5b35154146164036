"""GET /health — liveness and database reachability (no auth)."""

from aws_lambda_powertools.event_handler import Response

from functions.catalog import function_for_module
from shared.db.database import get_database
from shared.http.api import http_app
from shared.http.envelope import Envelope
from shared.platform.health import Health, check_health

app = http_app(function_for_module(__name__))


@app.endpoint
def health() -> Response[Envelope[Health]]:
    return app.ok(check_health(get_database()))


handler = app.lambda_handler()
