"""knowledge_retrieval: searches the tenant's knowledge bases through the knowledge domain's
contract (:class:`shared.knowledge.contract.Retriever`) with the query variable's text and the
node's retrieval settings. ``result`` is a list, best first, shaped as Dify's:
``{content, title, score, score_type, metadata: {document_id, knowledge_base_id, segment_id}}``
(``content`` is the parent segment's text under parent-child chunking). As for an agent, a
knowledge base that is gone (deleted since the workflow was published) is left out rather than
failing the run; with none left the result is empty."""

from __future__ import annotations

import uuid
from typing import Any

from shared.knowledge.contract import Rerank, RetrievalQuery, RetrievedPassage
from shared.workflows.configs import KnowledgeRetrievalConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput
from shared.workflows.variables import to_text

# As a chat turn's retrieval query: longer text is cut, not refused.
QUERY_MAX_CHARS = 4000


def resolve(call: NodeCall[KnowledgeRetrievalConfig]) -> dict[str, Any]:
    return {"query": to_text(call.pool.get_or_none(call.config.query_variable_selector))}


def _ids(config: KnowledgeRetrievalConfig) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(value) for value in config.knowledge_base_ids]
    except ValueError as exc:
        raise NodeFailure("knowledge_retrieval_invalid_id",
                          f"knowledge_base_ids must be UUIDs: {config.knowledge_base_ids}") from exc


def result_item(passage: RetrievedPassage) -> dict[str, Any]:
    return {"content": passage.content, "title": passage.document_name, "score": passage.score,
            "score_type": passage.score_type,
            "metadata": {"document_id": str(passage.document_id), "knowledge_base_id": str(passage.knowledge_base_id),
                         "segment_id": str(passage.segment_id)}}


def execute(call: NodeCall[KnowledgeRetrievalConfig], inputs: dict[str, Any]) -> NodeOutput:
    query = inputs["query"].strip()
    if not query:
        raise NodeFailure("knowledge_retrieval_query_empty",
                          "The query variable is empty: retrieval needs text to search for")
    settings = call.config.retrieval
    retrieval = call.ports.retriever.retrieve(call.context.tenant_id, RetrievalQuery(
        knowledge_base_ids=_ids(call.config), text=query[:QUERY_MAX_CHARS], mode=settings.mode, top_k=settings.top_k,
        score_threshold=settings.score_threshold, semantic_weight=settings.semantic_weight,
        rerank=Rerank() if settings.rerank else None, skip_unavailable=True))
    return NodeOutput({"result": [result_item(passage) for passage in retrieval.passages]})


EXECUTOR = NodeExecutor(resolve, execute)
