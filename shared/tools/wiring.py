"""The container's tool runtime and provider service: the database, the tenant credentials'
cipher, the safe fetch path (the fetch function in AWS), the MCP client (the ``tools-mcp``
function in AWS, in-process locally), the cache for MCP tool lists, the retrieval service and
the workflows (published versions, runs). Everything is reached on first use."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.tools.runtime import ToolRuntime, WorkflowOutcome

if TYPE_CHECKING:
    from shared.auth.principal import Principal
    from shared.egress import EgressPolicy
    from shared.knowledge.contract import Retriever
    from shared.tools.mcp import McpClient, SdkMcpClient
    from shared.tools.service import ToolProviderService
    from shared.workflows.published import PublishedWorkflow

# Seconds a synchronous invoke of the MCP function may wait: its Lambda timeout
# (functions/catalog/tools.py) and a margin.
MCP_FUNCTION_TIMEOUT_S = 330
_INVOKE_READ_TIMEOUT_S = MCP_FUNCTION_TIMEOUT_S + 30
# Who a workflow tool's run is recorded for when the caller names no one (a service principal
# of the tenant, allowed to run workflows only).
_SERVICE_TOKEN = uuid.UUID(int=0)


class _Workflows:
    """The workflows domain through its published-versions reader and its run service."""

    def published(self, tenant_id: uuid.UUID, workflow_ids: list[uuid.UUID] | None = None) -> list[PublishedWorkflow]:
        from shared.db.database import get_database
        from shared.workflows.published import published_workflows

        return published_workflows(get_database(), tenant_id, workflow_ids)

    def run(self, tenant_id: uuid.UUID, principal: Principal | None, workflow_id: uuid.UUID,
            inputs: Mapping[str, Any], timeout_s: float, lineage: Sequence[str] = ()) -> WorkflowOutcome:
        import dataclasses

        from shared.auth.principal import Principal
        from shared.cache.factory import get_event_stream
        from shared.config import get_settings
        from shared.db.database import get_database
        from shared.workflows.runs_api import StartRun
        from shared.workflows.runs_service import RunSettings, WorkflowRunService
        from shared.workflows.wiring import executions, run_events, run_store
        from shared.workflows.wiring_api import workflow_service

        # The call's own bound, not the HTTP API's sync bound.
        service = WorkflowRunService(get_database(), workflow_service(), run_store(), executions, get_event_stream(),
                                     run_events(), RunSettings(timeout_s, get_settings().workflow_stale_after_s))
        caller = principal if principal is not None and principal.tenant_id == tenant_id else \
            Principal(kind="api_key", token_id=_SERVICE_TOKEN, tenant_id=tenant_id, role="developer",
                      scopes=frozenset({"workflow:run"}))
        # A key bound to an agent runs the agent's tools: the binding is the agent's, not a workflow's.
        if caller.resource_type not in (None, "workflow"):
            caller = dataclasses.replace(caller, resource_type=None, resource_id=None)
        run = service.start_run(caller, workflow_id, StartRun(inputs=dict(inputs), mode="sync"), lineage=lineage)
        return WorkflowOutcome(status=run.status, run_id=str(run.id), outputs=run.outputs,
                               error_code=run.error.code if run.error else None,
                               error_message=run.error.message if run.error else None)


def _retriever() -> Retriever:
    from shared.knowledge.wiring import retrieval_service

    return retrieval_service()


def _fetcher() -> Any:
    from shared.workflows.fetch.wiring import http_fetcher

    return http_fetcher()


def _cache() -> Any:
    from shared.cache.factory import get_kv_store

    return get_kv_store()


def _cipher() -> Any:
    from shared.models.credentials import default_cipher

    return default_cipher()


def _policy() -> EgressPolicy:
    from shared.egress import egress_policy

    return egress_policy()


def mcp_client() -> McpClient:
    from shared.config import get_settings

    name = get_settings().tools_mcp_function_name
    if name:
        return _lambda_mcp(name)
    return sdk_mcp_client()


def sdk_mcp_client() -> SdkMcpClient:
    """In-process (the MCP function's own, and the local runtime's)."""
    return _sdk_mcp(_policy())


@lru_cache(maxsize=4)
def _sdk_mcp(policy: EgressPolicy) -> SdkMcpClient:
    from shared.tools.mcp import SdkMcpClient

    return SdkMcpClient(policy)


@lru_cache(maxsize=4)
def _lambda_mcp(function_name: str) -> McpClient:
    from shared.tools.mcp import LambdaMcpClient

    def lambda_client() -> Any:
        from shared.aws.clients import client

        return client("lambda", read_timeout_s=_INVOKE_READ_TIMEOUT_S)

    return LambdaMcpClient(lambda_client, function_name)


def tool_runtime() -> ToolRuntime:
    """The :class:`~shared.tools.contract.ToolCatalog` and ``ToolExecutor`` of this container."""
    from shared.db.database import get_database

    return ToolRuntime(get_database(), _cipher, _fetcher, mcp_client, _cache, _retriever, _Workflows())


def tool_provider_service() -> ToolProviderService:
    from shared.db.database import get_database
    from shared.tools.service import ToolProviderService

    return ToolProviderService(get_database(), _cipher, tool_runtime(), _policy)
