"""The model gateway's functions: catalog, tenant models, defaults, usage and quota."""

from __future__ import annotations

from functions.catalog._common import PROVIDER_ACCESS, PROVIDER_KEYS, PROVIDER_LAYERS
from shared.catalog import DATABASE, REDIS, Function, Http, Schedule

_MD = "models"

FUNCTIONS: tuple[Function, ...] = (
    Function("models-refresh", "functions.models.refresh_catalog", _MD,
             Http("POST", "/api/v1/models/refresh", permission="platform:admin",
                  summary="Load the shipped model catalog", tag="models"),
             access=(DATABASE, REDIS)),
    Function("models-refresh-scheduled", "functions.models.refresh_catalog_scheduled", _MD,
             Schedule("rate(1 hour)", "Keep the model catalog in step with the shipped files"),
             access=(DATABASE,)),
    Function("models-list", "functions.models.list_models", _MD,
             Http("GET", "/api/v1/models", permission="model:read", summary="List models", tag="models"),
             access=(DATABASE, REDIS, PROVIDER_KEYS)),
    Function("models-get-defaults", "functions.models.get_defaults", _MD,
             Http("GET", "/api/v1/models/defaults", permission="model:read",
                  summary="The tenant's default models", tag="models"),
             access=(DATABASE, REDIS)),
    Function("models-set-defaults", "functions.models.set_defaults", _MD,
             Http("PUT", "/api/v1/models/defaults", permission="model:manage",
                  summary="Choose the tenant's default models", tag="models"),
             access=(DATABASE, REDIS)),
    Function("models-get", "functions.models.get_model", _MD,
             Http("GET", "/api/v1/models/{model_name}", permission="model:read", summary="One model", tag="models"),
             access=(DATABASE, REDIS, PROVIDER_KEYS)),
    Function("models-create", "functions.models.create_model", _MD,
             Http("POST", "/api/v1/models", permission="model:manage",
                  summary="Add a tenant model (credentials tested, stored encrypted)", tag="models"),
             memory_mb=1024, timeout_s=28, layers=PROVIDER_LAYERS, access=PROVIDER_ACCESS),
    Function("models-update", "functions.models.update_model", _MD,
             Http("PATCH", "/api/v1/models/{model_name}", permission="model:manage",
                  summary="Change a tenant model", tag="models"),
             memory_mb=1024, timeout_s=28, layers=PROVIDER_LAYERS, access=PROVIDER_ACCESS),
    Function("models-delete", "functions.models.delete_model", _MD,
             Http("DELETE", "/api/v1/models/{model_name}", permission="model:manage",
                  summary="Remove a tenant model", tag="models"),
             access=(DATABASE, REDIS)),
    Function("models-test", "functions.models.test_model", _MD,
             Http("POST", "/api/v1/models/{model_name}/test", permission="model:manage",
                  summary="Test a model's credentials with a minimal call", tag="models"),
             memory_mb=1024, timeout_s=28, layers=PROVIDER_LAYERS, access=PROVIDER_ACCESS),
    Function("usage-get", "functions.models.get_usage", _MD,
             Http("GET", "/api/v1/usage", permission="usage:read",
                  summary="Token usage and cost by model or day", tag="usage"),
             access=(DATABASE, REDIS)),
    Function("tenants-set-quota", "functions.tenancy.set_quota", "tenancy",
             Http("PUT", "/api/v1/tenants/{tenant_id}/quota", permission="platform:admin",
                  summary="Set a tenant's monthly token quota", tag="tenants"),
             access=(DATABASE, REDIS)),
)

