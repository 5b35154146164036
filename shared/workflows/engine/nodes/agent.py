"""agent: a published agent of the tenant answers the node's prompt as it answers a chat
message (its model, system prompt, knowledge; the generation of its mode, chosen as a chat turn
chooses it), without a conversation: no history, nothing stored on a conversation, the answer
streamed as the node's text chunks. Outputs ``text`` and ``tokens`` (the model tokens it used,
counted on the node). The agents' own errors keep their codes (``agent_not_found``,
``agent_not_published``, ``agent_mode_unavailable``, model errors...)."""

from __future__ import annotations

from typing import Any

from shared.workflows.configs import AgentNodeConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput


def resolve(call: NodeCall[AgentNodeConfig]) -> dict[str, Any]:
    render = call.pool.render
    return {"agent_id": call.config.agent_id, "prompt": render(call.config.prompt),
            "inputs": {name: render(text) for name, text in call.config.inputs.items()}}


def execute(call: NodeCall[AgentNodeConfig], inputs: dict[str, Any]) -> NodeOutput:
    agents = call.ports.agents
    if agents is None:
        raise NodeFailure("agent_unavailable", "Agents cannot answer here (no agent port); run the workflow through "
                                               "the workflow engine")
    prompt = inputs["prompt"].strip()
    if not prompt:
        raise NodeFailure("agent_prompt_empty", "The prompt is empty once rendered: the agent needs a message to "
                                                "answer (check the variables it names)")
    reply = agents.answer(call.context.tenant_id, inputs["agent_id"], prompt, inputs["inputs"],
                          user=call.context.user_id, cancelled=call.cancelled, on_text=call.chunk)
    call.spend(reply.tokens)
    return NodeOutput({"text": reply.text, "tokens": reply.tokens})


EXECUTOR = NodeExecutor(resolve, execute)
