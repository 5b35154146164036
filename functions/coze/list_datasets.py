"""GET /coze/v1/datasets — the tenant's datasets (knowledge bases), by page."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.facades.coze import datasets
from shared.facades.coze.wire import CozeEnvelope
from shared.http.api import http_app
from shared.http.context import current_principal

app = http_app(function_for_module(__name__))


@app.endpoint
def list_datasets(space_id: Annotated[str, Query(max_length=100, description="Accepted: the tenant is the space")],
                  name: Annotated[str | None, Query(max_length=100, description="Part of the name")] = None,
                  format_type: Annotated[str | None, Query(pattern=r"^[0-2]?$", description=(
                      "0: text (the only kind here); empty: any (cozepy sends it empty when not given)"))] = None,
                  page_num: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                  page_size: Annotated[int, Query(ge=1, le=300)] = 10,
                  ) -> Response[CozeEnvelope[datasets.CozeDatasetList]]:
    kind = int(format_type) if format_type else None
    return app.ok(datasets.list_datasets(current_principal(), name, kind, page_num, page_size))


handler = app.lambda_handler()
