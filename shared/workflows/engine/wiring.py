"""The engine's production ports: the model gateway, the knowledge retrieval service, the code
sandbox, the fetch path, the uploads bucket, the tenant's published workflows (sub-workflow
nodes), its tools (tool nodes) and agents (agent nodes), each the container's own. Built on
first use; nothing here does I/O at import time."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.workflows.engine.runner import EnginePorts, NodeRunner


@cache
def engine_ports() -> EnginePorts:
    from shared.aws.clients import client
    from shared.chat.wiring import agent_answerer
    from shared.config import get_settings
    from shared.knowledge.wiring import retrieval_service
    from shared.models.wiring import model_gateway
    from shared.tools.wiring import tool_runtime
    from shared.workflows.engine.files import S3FileStore
    from shared.workflows.engine.runner import EnginePorts
    from shared.workflows.fetch.wiring import http_fetcher
    from shared.workflows.sandbox.wiring import code_runner
    from shared.workflows.wiring_api import workflow_service

    bucket = get_settings().uploads_bucket
    return EnginePorts(models=model_gateway(), retriever=retrieval_service(), code_runner=code_runner(),
                       fetcher=http_fetcher(), files=S3FileStore(client, bucket) if bucket else None,
                       workflows=workflow_service(), tools=tool_runtime(), agents=agent_answerer())


def node_runner() -> NodeRunner:
    from shared.workflows.engine.runner import NodeRunner

    return NodeRunner(engine_ports())


def reset_engine_ports() -> None:
    """Forget the cached ports (tests and the local runtime change settings)."""
    engine_ports.cache_clear()
