"""Platform, tenancy and maintenance functions."""

from __future__ import annotations

from shared.catalog import (
    DATABASE,
    DATABASE_ADMIN,
    REDIS,
    Authorizer,
    DefaultRoute,
    Deploy,
    Function,
    Http,
    Schedule,
    StateMachineSpec,
    StepFunctionsTask,
    secret,
    state_machine,
)

_T = "tenancy"
_P = "platform"
_M = "maintenance"
_S = "schema"

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
    # Its own domain (and nested stack), which every other stack waits for: no function serves
    # before its schema exists (infra/migrations.py). 900 s: each isComplete poll applies the
    # migrations that fit in one invocation, the waiter polls until none is left.
    Function("db-migrate", "functions.platform.db_migrate", _S, Deploy(), timeout_s=900,
             layers=("base", "aws"), access=(DATABASE_ADMIN, secret("admin-token")),
             description="Applies SQL migrations and installs the platform admin token"),
    # Tenancy ------------------------------------------------------------------
    Function("tenants-create", "functions.tenancy.create_tenant", _T,
             Http("POST", "/api/v1/tenants", permission="platform:admin",
                  summary="Create a tenant and its first owner", tag="tenants"),
             access=(DATABASE, REDIS)),
    Function("tenants-list", "functions.tenancy.list_tenants", _T,
             Http("GET", "/api/v1/tenants", permission="platform:admin",
                  summary="List tenants (platform admin)", tag="tenants"),
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


STATE_MACHINES: tuple[StateMachineSpec, ...] = (
    StateMachineSpec("purge", _M, "shared.maintenance.state_machines:purge_definition",
                     "Purge soft-deleted rows table by table, in batches"),
)
