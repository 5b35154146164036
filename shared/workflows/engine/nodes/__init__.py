"""One executor per node type (a module each). Modules import heavy libraries (Jinja2, the
sandbox and fetch clients) only when a node of their type runs."""

from __future__ import annotations

from typing import Any

from shared.workflows.engine.nodes import (
    agent,
    answer,
    assigner,
    code,
    container_start,
    document_extractor,
    end,
    http_request,
    human_input,
    if_else,
    iteration,
    knowledge_retrieval,
    list_operator,
    llm,
    loop,
    parameter_extractor,
    question_classifier,
    start,
    sub_workflow,
    template,
    tool,
    variable_aggregator,
)
from shared.workflows.engine.nodes.base import NodeExecutor

EXECUTORS: dict[str, NodeExecutor[Any]] = {
    "start": start.EXECUTOR,
    "end": end.EXECUTOR,
    "llm": llm.EXECUTOR,
    "knowledge_retrieval": knowledge_retrieval.EXECUTOR,
    "if_else": if_else.EXECUTOR,
    "code": code.EXECUTOR,
    "template": template.EXECUTOR,
    "http_request": http_request.EXECUTOR,
    "variable_aggregator": variable_aggregator.EXECUTOR,
    "iteration": iteration.EXECUTOR,
    "iteration_start": container_start.EXECUTOR,
    "loop": loop.EXECUTOR,
    "loop_start": container_start.EXECUTOR,
    "loop_end": container_start.EXECUTOR,
    "assigner": assigner.EXECUTOR,
    "question_classifier": question_classifier.EXECUTOR,
    "parameter_extractor": parameter_extractor.EXECUTOR,
    "list_operator": list_operator.EXECUTOR,
    "document_extractor": document_extractor.EXECUTOR,
    "human_input": human_input.EXECUTOR,
    "sub_workflow": sub_workflow.EXECUTOR,
    "answer": answer.EXECUTOR,
    "tool": tool.EXECUTOR,
    "agent": agent.EXECUTOR,
}
