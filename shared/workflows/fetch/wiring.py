"""This container's fetcher: the fetch function when the settings name it (in AWS, CDK sets
``WORKFLOW_FETCH_FUNCTION_NAME`` on the functions that may invoke it), else in-process through
the deployment's egress policy (``STRATUS_EGRESS_ALLOW``; the local runtime, ``make dev``).
Cached per container, and again when the settings change (tests, the local runtime)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from shared.egress import EgressPolicy, egress_policy
from shared.workflows.fetch.local import SafeFetcher
from shared.workflows.fetch.ports import HttpFetcher
from shared.workflows.fetch.remote import LambdaFetcher

# Seconds a synchronous invoke of the fetch function may wait: its Lambda timeout
# (functions/catalog/workflows.py) and a margin, so the client never gives up (and retries a
# request the function is still making) before the function does.
FETCH_FUNCTION_TIMEOUT_S = 900
_INVOKE_READ_TIMEOUT_S = FETCH_FUNCTION_TIMEOUT_S + 30


def http_fetcher() -> HttpFetcher:
    from shared.config import get_settings

    name = get_settings().workflow_fetch_function_name
    if name:
        return _lambda_fetcher(name)
    return safe_fetcher()


def safe_fetcher() -> SafeFetcher:
    """The in-process fetcher (the fetch function's own, and the local runtime's)."""
    return _safe_fetcher(egress_policy())


@lru_cache(maxsize=4)
def _safe_fetcher(policy: EgressPolicy) -> SafeFetcher:
    return SafeFetcher(policy)


@lru_cache(maxsize=4)
def _lambda_fetcher(function_name: str) -> LambdaFetcher:
    return LambdaFetcher(_lambda_client, function_name)


def _lambda_client() -> Any:
    from shared.aws.clients import client

    return client("lambda", read_timeout_s=_INVOKE_READ_TIMEOUT_S)
