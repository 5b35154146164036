"""The fetch function: one HTTP request of a workflow node, made outside the VPC through the
egress policy, answered as a fetch answer (a response, or the error that stopped it).
Invoked directly by the workflow functions (shared.workflows.fetch.remote)."""

from __future__ import annotations

from typing import Any

from shared.handler import powertools_handler
from shared.workflows.fetch.ports import FetchFailed, FetchRequest, to_answer
from shared.workflows.fetch.remote import fetched_answer
from shared.workflows.fetch.wiring import safe_fetcher


def _fetch(event: Any, context: Any) -> dict[str, Any]:
    try:
        request = FetchRequest.from_json(event)
    except ValueError as exc:
        return to_answer(FetchFailed(f"the fetch function was sent an invalid request ({exc}): a platform fault"))
    return fetched_answer(safe_fetcher(), request)


handler = powertools_handler(_fetch)
