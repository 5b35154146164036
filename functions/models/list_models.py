"""GET /api/v1/models — catalog and tenant models, filterable by capability and source."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.catalog import function_for_module
from shared.http.api import http_app
from shared.http.context import current_principal
from shared.http.envelope import ListEnvelope
from shared.http.params import LimitQuery, PageQuery, SortQuery, page_request
from shared.models.api import ModelOut, ModelSource
from shared.models.repository import MODEL_SORTS
from shared.models.spec import Capability
from shared.models.wiring import model_service

app = http_app(function_for_module(__name__))


@app.endpoint
def list_models(capability: Annotated[Capability | None, Query()] = None,
                source: Annotated[ModelSource | None, Query()] = None,
                page: PageQuery = 1, limit: LimitQuery = 20,
                sort: SortQuery = "name") -> Response[ListEnvelope[ModelOut]]:
    listed = model_service().list(current_principal(), capability, source,
                                             page_request(page, limit, sort, MODEL_SORTS))
    return app.page(listed)


handler = app.lambda_handler()
