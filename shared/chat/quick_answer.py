"""Quick-answer generation: history, optional query rewrite, retrieval, a prompt within the
model's context window, then one streamed completion."""

from __future__ import annotations

import logging
from typing import Any

from shared.chat import prompt as prompts
from shared.chat.generation import Generation, TurnContext
from shared.errors import StratusError
from shared.knowledge.contract import Rerank, RetrievalQuery
from shared.models.types import ChatRequest, StreamEnd, TextDelta

logger = logging.getLogger(__name__)

# A rewritten question, and any query handed to retrieval, are cut to these.
REWRITE_MAX_CHARS = 2000
QUERY_MAX_CHARS = 4000


class QuickAnswer:
    def generate(self, ctx: TurnContext) -> Generation:
        config = ctx.config
        past = ctx.memory(config.memory.turns)
        query, rewritten = ctx.question, None
        if config.query_rewrite and past:
            rewritten = self._rewrite(ctx, past)
            query = rewritten or ctx.question
            ctx.checkpoint()
        candidates: list[prompts.Passage] | None = None
        if config.knowledge.knowledge_base_ids:
            began = ctx.clock()
            candidates = self._retrieve(ctx, query)
            ctx.measure("retrieval_ms", began)
            ctx.checkpoint()
        ctx.check_cancelled()
        plan = prompts.build_prompt(system_prompt=ctx.system_prompt, question=ctx.question, history=past,
                                    candidates=candidates, context_tokens=ctx.context_tokens,
                                    output_tokens=ctx.output_tokens, memory_max_tokens=config.memory.max_tokens,
                                    count=ctx.count_tokens)
        references = [_reference(p) for p in plan.passages]
        if candidates is not None:
            ctx.publish("retrieval.references", {"query": query, "rewritten": rewritten is not None,
                                                 "references": references})
        ctx.keep(references=references, rewritten_query=rewritten, context=plan.report)
        request = ChatRequest(messages=plan.messages, temperature=config.model.temperature,
                              top_p=config.model.top_p, max_tokens=ctx.output_tokens)
        model_began = ctx.clock()
        events, _quota, model_name = ctx.gateway.stream_chat(
            ctx.tenant_id, request, model=config.model.name, fallback_model=config.fallback_model)
        ctx.keep(model=model_name)
        usage: dict[str, Any] | None = None
        stop_reason = "stop"
        first = True
        try:
            for event in events:
                if isinstance(event, TextDelta):
                    if not event.text:
                        continue
                    if first:
                        ctx.measure("model_first_token_ms", model_began)
                        first = False
                    ctx.delta(event.text)
                elif isinstance(event, StreamEnd):
                    stop_reason = event.stop_reason
                    if event.usage is not None:
                        usage = event.usage.as_dict()
        finally:
            # Closing the provider stream stops generation there (and accounts the tokens).
            close = getattr(events, "close", None)
            if close is not None:
                close()
        return Generation(stop_reason=stop_reason, usage=usage)

    @staticmethod
    def _rewrite(ctx: TurnContext, past: list[tuple[str, str]]) -> str | None:
        config = ctx.config
        try:
            result = ctx.gateway.chat(
                ctx.tenant_id, ChatRequest(messages=prompts.rewrite_messages(past, ctx.question), temperature=0,
                                           max_tokens=200),
                model=config.model.name, fallback_model=config.fallback_model)
        except StratusError as exc:
            # An optional step: retrieval uses the question as asked.
            logger.warning("query rewrite failed; retrieving with the question as asked",
                           extra={"code": exc.code, "message_id": str(ctx.answer_id)})
            return None
        text = " ".join(result.result.content.split()).strip().strip('"')
        return text[:REWRITE_MAX_CHARS] or None

    @staticmethod
    def _retrieve(ctx: TurnContext, query: str) -> list[prompts.Passage]:
        settings = ctx.config.knowledge
        retrieval = settings.retrieval
        # The agent's settings override the knowledge base's; one deleted since the agent was
        # published is skipped, not fatal.
        result = ctx.retriever.retrieve(ctx.tenant_id, RetrievalQuery(
            knowledge_base_ids=settings.knowledge_base_ids, text=query[:QUERY_MAX_CHARS], mode=retrieval.mode,
            top_k=retrieval.top_k, score_threshold=retrieval.score_threshold,
            semantic_weight=retrieval.semantic_weight,
            rerank=Rerank(model=retrieval.rerank_model) if retrieval.rerank_model else None, skip_unavailable=True))
        return [prompts.Passage(i + 1, item.document_name, item.page, item.content, item)
                for i, item in enumerate(result.passages)]


def _reference(passage: prompts.Passage) -> dict[str, Any]:
    item = passage.source
    return {"index": passage.index, "segment_id": str(item.segment_id),
            "knowledge_base_id": str(item.knowledge_base_id), "document_id": str(item.document_id),
            "document_name": item.document_name, "position": item.position, "page": item.page,
            "score": item.score, "score_type": item.score_type, "content": passage.content}
