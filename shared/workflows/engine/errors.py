"""Why a node failed, in domain terms. An executor raises :class:`NodeFailure` with a code
prefixed by its node type (``llm_…``, ``http_request_…``, ``code_…``, ``template_…``); errors
from the ports (the model gateway, retrieval, the sandbox, the fetch path) keep their own codes
(``model_context_too_long``, ``fetch_timeout``…). The runner turns either into the node's
:class:`~shared.workflows.engine.runner.NodeError`, which the run records and which the
default-value and failure-branch strategies expose as ``error_type``/``error_message``."""

from __future__ import annotations

from typing import Any


class NodeFailure(Exception):
    """The node cannot produce its outputs (its configuration, its inputs or what it called
    said so); the message says what to change."""

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
