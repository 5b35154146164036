"""Smart-reasoning generation: a tool-calling loop (docs/adr/0040-smart-reasoning-agent-loop.md).

Each step is one streamed model call. With native function calling (the model declares
``function_calling``, or the agent asks for it) the model's tool calls arrive as streamed
fragments; with ReAct (:mod:`shared.chat.react`) they are parsed from its text. The tools a step
calls run at once (threads, at most ``budget.parallel_tool_calls`` together), each bounded by
its timeout; their results go back to the model as observations (an error, a timeout, a refusal
too: never a crash) and the next step begins. A step that calls no tool is the answer.

Bounds: ``max_iterations`` rounds of tool calls, then one last step without tools; the turn's
time (``budget.turn_timeout_s``) and tokens (``budget.turn_tokens``) likewise end the tool calls
early. A cancel (or a reaped answer) stops the loop at once, also while tools run: the loop
stops waiting, records the unfinished calls ``cancelled`` and ends the answer.

Events: ``agent.thought`` (the text a step gave with its tool calls), ``tool.call`` and
``tool.result``; the answer's text as ``message.delta``. Every step is kept with the answer
(``steps``)."""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shared.agents.config import ClientTool
from shared.agents.tooling import model_names, selections
from shared.chat import prompt as prompts
from shared.chat import react
from shared.chat.generation import Generation, ResumeState, TurnCancelled, TurnContext
from shared.models.spec import Capability
from shared.models.types import ChatRequest, Message, StreamEnd, TextDelta, Tool, ToolCall, ToolCallDelta
from shared.tools.contract import CallContext, ToolCatalog, ToolExecutor, ToolRef, ToolResult, ToolSpec

logger = logging.getLogger(__name__)

Reasoning = Literal["function_calling", "react"]
# Native mode: a step's text is held while it may still turn out to be a thought (tool-call
# fragments follow); past this many characters without one it is the answer and streams on.
HOLD_CHARS = 400
# What an event and the stored step keep of a tool's output (the model gets more).
STORED_OUTPUT_CHARS = 4000
# How often the loop looks at the cancel flag while tools run.
POLL_S = 0.1
# A tool call the runtime did not end by its own timeout is given up this much later.
GRACE_S = 2.0
# The source of a client tool's reference (``client/<name>``): the client runs it.
CLIENT = "client"
NO_ANSWER = "I could not finish the answer within the steps allowed."


class ToolRuntime(ToolCatalog, ToolExecutor, Protocol):
    """The tools domain's catalog and executor (one object in this container)."""


@dataclass
class _Call:
    id: str
    name: str
    arguments_text: str
    arguments: dict[str, Any] | None
    problem: str | None
    spec: ToolSpec | None
    result: ToolResult | None = None
    status: str | None = None


@dataclass
class _Step:
    text: str
    calls: list[_Call]
    usage: dict[str, Any] | None
    stop_reason: str
    answered: bool  # the step's text was streamed as the answer
    model_s: float = 0.0
    tools_s: float = 0.0


@dataclass
class _Totals:
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False
    model_s: float = 0.0
    tools_s: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)

    def add(self, usage: dict[str, Any] | None) -> None:
        if usage:
            self.input_tokens += int(usage.get("input_tokens") or 0)
            self.output_tokens += int(usage.get("output_tokens") or 0)
            self.estimated = self.estimated or bool(usage.get("estimated"))

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def usage(self) -> dict[str, Any]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_tokens": self.tokens, "estimated": self.estimated}


class SmartReasoning:
    """The ``smart-reasoning`` mode's :class:`~shared.chat.generation.GenerationStrategy`."""

    def __init__(self, tools: Callable[[], ToolRuntime], *, clock: Callable[[], float] = time.monotonic,
                 poll_s: float = POLL_S) -> None:
        self._tools = tools
        self._clock = clock
        self._poll_s = poll_s

    def generate(self, ctx: TurnContext) -> Generation:
        config = ctx.config
        started = self._clock()
        runtime = self._tools()
        # Client tools (ADR 0051): offered like the others when the caller can answer them;
        # a call to one pauses the turn. Stratus's own tools never take their names.
        client = {tool.name: tool for tool in config.client_tools} \
            if ctx.client_tools and config.tool_choice != "none" else {}
        offered = model_names(runtime.list(ctx.tenant_id, selections(config)), reserved=client) \
            if config.tool_choice != "none" else {}
        # A tool_choice naming a client tool not offered here (an API that cannot answer them)
        # names nothing the model is given: it chooses itself.
        tool_choice = config.tool_choice if config.tool_choice in ("auto", "none", "required") \
            or config.tool_choice in offered or config.tool_choice in client else "auto"
        resume = ctx.resume
        reasoning = self._reasoning(ctx, bool(offered or client)) if resume is None or not resume.steps \
            else resume.steps[-1]["reasoning"]
        ctx.check_cancelled()
        system = ctx.system_prompt
        if reasoning == "react" and (offered or client):
            system = system + "\n\n" + react.instructions([*offered.items(), *_client_specs(client).items()],
                                                          tool_choice)
        past = ctx.memory(config.memory.turns)
        plan = prompts.build_prompt(system_prompt=system, question=ctx.question, history=past, candidates=None,
                                    context_tokens=ctx.context_tokens, output_tokens=ctx.output_tokens,
                                    memory_max_tokens=config.memory.max_tokens, count=ctx.count_tokens)
        messages = list(plan.messages)
        tools = [Tool(name=name, description=spec.description[:1000], parameters=spec.parameters)
                 for name, spec in offered.items()]
        tools += [Tool(name=name, description=tool.description, parameters=tool.parameters)
                  for name, tool in client.items()]
        totals = _Totals()
        report: dict[str, Any] = {**plan.report, "reasoning": reasoning, "tools": sorted(offered)}
        if client:
            report["client_tools"] = sorted(client)
        stop_reason = "stop"
        rounds = 0
        index = 0
        if resume is not None:
            messages += self._resumed(ctx, resume, totals)
            index = len(totals.steps)
            rounds = sum(1 for step in totals.steps if step["tool_calls"])
        ctx.keep(context=report, steps=totals.steps)
        has_tools = bool(offered or client)
        while True:
            index += 1
            ctx.check_cancelled()
            over = self._over_budget(config, started, totals)
            last = not has_tools or rounds >= config.max_iterations or over is not None
            if last and has_tools and (rounds >= config.max_iterations or over is not None):
                stop_reason = over or "max_iterations"
                if reasoning == "react":
                    messages.append(Message(role="user", content=react.FINISH_NOW))
            choice = None
            if reasoning == "function_calling" and tools:
                choice = "none" if last else (tool_choice if index == 1 else "auto")
            request = ChatRequest(messages=messages, tools=tools if reasoning == "function_calling" else [],
                                  tool_choice=choice, temperature=config.model.temperature, top_p=config.model.top_p,
                                  max_tokens=ctx.output_tokens,
                                  stop=react.STOP if reasoning == "react" and has_tools and not last else [])
            step = self._model_step(ctx, request, reasoning if has_tools else "function_calling",
                                    {**offered, **_client_specs(client)}, index, totals, final_only=last)
            if not step.calls or last:
                self._record(totals, index, reasoning, step, [])
                if not step.answered and step.text.strip():
                    ctx.delta(step.text.strip())
                elif not step.answered and not step.text.strip() and stop_reason != "stop":
                    ctx.delta(NO_ANSWER)
                if stop_reason == "stop":
                    stop_reason = step.stop_reason
                break
            rounds += 1
            if step.text.strip() and not step.answered:
                ctx.publish("agent.thought", {"step": index, "text": step.text.strip()})
            waiting = [call for call in step.calls if call.spec is not None and call.spec.ref.source == CLIENT
                       and call.arguments is not None and call.problem is None]
            tools_began = self._clock()
            try:
                step.tools_s = self._run_tools(ctx, runtime, [c for c in step.calls if c not in waiting], index,
                                               started, announce=waiting)
            except TurnCancelled:
                step.tools_s = self._clock() - tools_began
                self._record(totals, index, reasoning, step, step.calls)
                ctx.keep(steps=totals.steps)
                raise
            self._record(totals, index, reasoning, step, step.calls)
            ctx.keep(steps=totals.steps)
            if waiting:
                # The client runs these: the turn pauses here, resumed by their outputs.
                report["iterations"] = rounds
                ctx.keep(context=report, steps=totals.steps)
                return Generation(stop_reason="requires_action", usage=totals.usage(), required_action=[
                    {"id": call.id, "name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}
                    for call in waiting])
            messages += self._observations(reasoning, step)
        report["iterations"] = rounds
        report["stopped_by"] = stop_reason
        ctx.keep(context=report, steps=totals.steps)
        return Generation(stop_reason=stop_reason, usage=totals.usage())

    # Choosing the protocol -------------------------------------------------------------------
    @staticmethod
    def _reasoning(ctx: TurnContext, has_tools: bool) -> Reasoning:
        chosen = ctx.config.reasoning
        if chosen != "auto":
            return chosen
        if not has_tools:
            return "function_calling"
        target = ctx.gateway.target(ctx.tenant_id, ctx.config.model.name, Capability.CHAT)
        return "function_calling" if target.spec.has(Capability.FUNCTION_CALLING) else "react"

    def _over_budget(self, config: Any, started: float, totals: _Totals) -> str | None:
        if self._clock() - started >= config.budget.turn_timeout_s:
            return "turn_timeout"
        if totals.tokens >= config.budget.turn_tokens:
            return "turn_tokens"
        return None

    # One model step ----------------------------------------------------------------------------
    def _model_step(self, ctx: TurnContext, request: ChatRequest, reasoning: Reasoning, offered: dict[str, ToolSpec],
                    index: int, totals: _Totals, *, final_only: bool) -> _Step:
        config = ctx.config
        began = ctx.clock()
        model_began = self._clock()
        events, _quota, model_name = ctx.gateway.stream_chat(ctx.tenant_id, request, model=config.model.name,
                                                             fallback_model=config.fallback_model)
        ctx.keep(model=model_name)
        text: list[str] = []
        fragments: dict[int, dict[str, Any]] = {}
        usage: dict[str, Any] | None = None
        stop_reason = "stop"
        answering = False  # the step's text streams as the answer
        streamed = 0  # how much of the text went out as the answer
        try:
            for event in _events(events):
                if isinstance(event, TextDelta):
                    if not event.text:
                        continue
                    if index == 1 and not text:
                        ctx.measure("model_first_token_ms", began)
                    text.append(event.text)
                    if answering:
                        ctx.delta(event.text)
                        continue
                    joined = "".join(text)
                    if reasoning == "react":
                        begin = react.final_start(joined)
                        if begin is not None:
                            answering = True
                            streamed = begin
                    elif not fragments and (final_only or len(joined) > HOLD_CHARS):
                        answering = True
                        streamed = 0
                    if answering:
                        start_text = joined[streamed:]
                        start_text = start_text.lstrip() if reasoning == "react" else start_text
                        if start_text:
                            ctx.delta(start_text)
                elif isinstance(event, ToolCallDelta):
                    slot = fragments.setdefault(event.index, {"id": None, "name": None, "arguments": []})
                    slot["id"] = slot["id"] or event.id
                    slot["name"] = slot["name"] or event.name
                    slot["arguments"].append(event.arguments)
                    ctx.check_cancelled()
                    ctx.checkpoint()  # nothing is said meanwhile: keep the reaper away
                elif isinstance(event, StreamEnd):
                    stop_reason = event.stop_reason
                    if event.usage is not None:
                        usage = event.usage.as_dict()
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
            model_s = self._clock() - model_began
            totals.model_s += model_s
        totals.add(usage)
        whole = "".join(text)
        if reasoning == "react":
            parsed = react.parse(whole)
            if answering:
                return _Step(whole, [], usage, stop_reason, answered=True, model_s=model_s)
            if parsed.action is None or final_only:
                answer = parsed.final_answer if parsed.final_answer is not None else parsed.thought
                return _Step(answer or "", [], usage, stop_reason, answered=False, model_s=model_s)
            call = _Call(id=f"react_{index}", name=parsed.action, arguments_text=parsed.action_input,
                         arguments=parsed.arguments, problem=parsed.problem, spec=offered.get(parsed.action))
            return _Step(parsed.thought, [call], usage, "tool_calls", answered=False, model_s=model_s)
        calls = []
        for position, slot in sorted(fragments.items()):
            arguments_text = "".join(slot["arguments"])
            arguments, problem = _json_arguments(arguments_text)
            name = slot["name"] or ""
            calls.append(_Call(id=slot["id"] or f"call_{index}_{position}", name=name, arguments_text=arguments_text,
                               arguments=arguments, problem=problem, spec=offered.get(name)))
        if final_only:
            calls = []
        return _Step(whole, calls, usage, stop_reason if not calls else "tool_calls", answered=answering,
                     model_s=model_s)

    # Tools -------------------------------------------------------------------------------------
    def _run_tools(self, ctx: TurnContext, runtime: ToolRuntime, calls: list[_Call], index: int,
                   turn_started: float, *, announce: list[_Call] | None = None) -> float:
        """Run the step's calls (each gets its ``result``); the seconds they took. ``announce``:
        client tools' calls, published as calls but left to the client."""
        config = ctx.config
        budget = config.budget
        context = CallContext(knowledge_base_ids=tuple(config.knowledge.knowledge_base_ids), principal=ctx.principal,
                              max_output_chars=_observation_chars(ctx))
        runnable: list[_Call] = []
        for call in announce or []:
            call.status = "pending"
            ctx.publish("tool.call", {"step": index, "id": call.id, "name": call.name,
                                      "ref": str(call.spec.ref) if call.spec else None, "arguments": call.arguments})
        for call in calls:
            ctx.publish("tool.call", {"step": index, "id": call.id, "name": call.name,
                                      "ref": str(call.spec.ref) if call.spec else None,
                                      "arguments": call.arguments if call.arguments is not None
                                      else call.arguments_text})
            if call.spec is None:
                call.result = ToolResult("not_found", f"There is no tool {call.name!r} here: use one of the tools "
                                         "offered", 0, error_code="tool_not_found")
            elif call.problem is not None or call.arguments is None:
                call.result = ToolResult("invalid_arguments", call.problem or "give the arguments as a JSON object",
                                         0, error_code="tool_invalid_arguments")
            else:
                runnable.append(call)
        for call in calls:
            if call.result is not None:
                self._publish_result(ctx, index, call)
        if not runnable:
            return 0.0
        began = self._clock()
        remaining = max(0.5, budget.turn_timeout_s - (began - turn_started))
        timeout = min(budget.tool_timeout_s, remaining)
        pool = ThreadPoolExecutor(max_workers=min(len(runnable), budget.parallel_tool_calls),
                                  thread_name_prefix="agent-tool")
        pending: dict[Future[ToolResult], _Call] = {}
        try:
            for call in runnable:
                assert call.spec is not None and call.arguments is not None
                pending[pool.submit(runtime.call, ctx.tenant_id, call.spec.ref, call.arguments, timeout,
                                    context=context)] = call
            deadline = began + timeout + GRACE_S
            while pending:
                done, _ = wait(list(pending), timeout=self._poll_s, return_when=FIRST_COMPLETED)
                for future in done:
                    call = pending.pop(future)
                    call.result = _result_of(future)
                    self._publish_result(ctx, index, call)
                if not pending:
                    break
                try:
                    ctx.check_cancelled()
                    ctx.checkpoint()
                except TurnCancelled:
                    for call in runnable:
                        if call.result is not None:
                            continue
                        call.status = "cancelled"
                        call.result = ToolResult("error", "The turn was cancelled while the tool ran", self._ms(began),
                                                 error_code="tool_cancelled")
                        self._publish_result(ctx, index, call)
                    raise
                if self._clock() > deadline:
                    for future, call in list(pending.items()):
                        call.result = ToolResult("timeout", f"The tool did not answer within {timeout:g} s",
                                                 self._ms(began), error_code="tool_timeout")
                        self._publish_result(ctx, index, call)
                        del pending[future]
        finally:
            # Calls still running go on in their threads; nobody waits for them.
            pool.shutdown(wait=False, cancel_futures=True)
        return self._clock() - began

    def _publish_result(self, ctx: TurnContext, index: int, call: _Call) -> None:
        result = call.result
        assert result is not None
        output, cut = _stored(result.output)
        ctx.publish("tool.result", {"step": index, "id": call.id, "name": call.name,
                                    "status": call.status or result.status, "output": output,
                                    "truncated": result.truncated or cut, "elapsed_ms": result.elapsed_ms,
                                    "error_code": result.error_code})

    def _ms(self, since: float) -> int:
        return int((self._clock() - since) * 1000)

    # Continuing a paused answer --------------------------------------------------------------------
    def _resumed(self, ctx: TurnContext, resume: ResumeState, totals: _Totals) -> list[Message]:
        """The messages the paused answer's steps had given the model, rebuilt from what is
        stored (a tool's output as kept: at most 4,000 characters), with the client's outputs
        as the pending calls' results; the steps go on in ``totals`` (the pending calls now ``ok``)."""
        messages: list[Message] = []
        limit = _observation_chars(ctx)
        for stored in resume.steps:
            record = copy.deepcopy(stored)
            calls = []
            for call in record["tool_calls"]:
                arguments = call["arguments"]
                if call["status"] == "pending":
                    given = resume.outputs[call["id"]]
                    result = ToolResult("ok", given[:limit], 0, truncated=len(given) > limit)
                    output, cut = _stored(given)
                    call.update(status="ok", output=output, truncated=cut or result.truncated)
                    ctx.publish("tool.result", {"step": record["index"], "id": call["id"], "name": call["name"],
                                                "status": "ok", "output": output, "truncated": call["truncated"],
                                                "elapsed_ms": 0, "error_code": None})
                else:
                    status: Any = call["status"]  # a stored call's status, as the model saw it
                    result = ToolResult(status, call["output"], call["elapsed_ms"], truncated=call["truncated"],
                                        error_code=call.get("error_code"))
                calls.append(_Call(id=call["id"], name=call["name"],
                                   arguments_text=json.dumps(arguments, ensure_ascii=False)
                                   if isinstance(arguments, dict) else str(arguments),
                                   arguments=arguments if isinstance(arguments, dict) else None, problem=None,
                                   spec=None, result=result))
            totals.add(record.get("usage"))
            totals.steps.append(record)
            if calls:
                step = _Step(record.get("thought") or "", calls, None, "tool_calls", answered=False)
                messages += self._observations(record["reasoning"], step)
        return messages

    # Steps and observations ----------------------------------------------------------------------
    def _record(self, totals: _Totals, index: int, reasoning: Reasoning, step: _Step, calls: list[_Call]) -> None:
        totals.tools_s += step.tools_s
        records = []
        for call in calls:
            result = call.result or (ToolResult("ok", "", 0) if call.status == "pending" else ToolResult(
                "error", "The turn ended before the tool was called", 0, error_code="tool_cancelled"))
            output, cut = _stored(result.output)
            records.append({"id": call.id, "name": call.name, "ref": str(call.spec.ref) if call.spec else None,
                            "arguments": call.arguments if call.arguments is not None else call.arguments_text,
                            "status": call.status or result.status, "output": output,
                            "truncated": result.truncated or cut, "elapsed_ms": result.elapsed_ms,
                            "error_code": result.error_code})
        thought = step.text.strip() if calls else ""
        totals.steps.append({"index": index, "reasoning": reasoning, "thought": thought, "tool_calls": records,
                             "usage": step.usage, "model_ms": int(step.model_s * 1000),
                             "tools_ms": int(step.tools_s * 1000)})

    @staticmethod
    def _observations(reasoning: Reasoning, step: _Step) -> list[Message]:
        if reasoning == "react":
            call = step.calls[0]
            assert call.result is not None
            said = (f"Thought: {step.text}\n" if step.text else "") + f"Action: {call.name}\nAction Input: " \
                + (call.arguments_text or "{}")
            return [Message(role="assistant", content=said),
                    Message(role="user", content=react.observation(_for_model(call.result)))]
        assistant = Message(role="assistant", content=step.text.strip(), tool_calls=[
            # History must hold valid JSON objects (Anthropic's tool_use input is one).
            ToolCall(id=call.id, name=call.name or "unknown",
                     arguments=call.arguments_text if call.arguments is not None and call.arguments_text.strip()
                     else "{}")
            for call in step.calls])
        results = []
        for call in step.calls:
            assert call.result is not None
            results.append(Message(role="tool", tool_call_id=call.id, content=_for_model(call.result)))
        return [assistant, *results]


def _client_specs(client: dict[str, ClientTool]) -> dict[str, ToolSpec]:
    """Client tools as specs (``client/<name>``): offered and parsed like the others, never run."""
    return {name: ToolSpec(ref=ToolRef(CLIENT, name), name=name, description=tool.description,
                           parameters=tool.parameters, kind="client", provider_name="client")
            for name, tool in client.items()}


def _events(events: Any) -> Iterator[Any]:
    yield from events


def _json_arguments(text: str) -> tuple[dict[str, Any] | None, str | None]:
    if not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"The arguments are not valid JSON ({exc}): give one JSON object"
    if not isinstance(value, dict):
        return None, "The arguments must be a JSON object"
    return value, None


def _result_of(future: Future[ToolResult]) -> ToolResult:
    try:
        return future.result()
    except Exception:  # the executor never raises for a tool's outcome: a bug of ours
        logger.exception("a tool call raised")
        return ToolResult("error", "The tool failed inside the platform (not the tool's fault)", 0,
                          error_code="tool_internal_error")


def _stored(output: str) -> tuple[str, bool]:
    if len(output) <= STORED_OUTPUT_CHARS:
        return output, False
    return output[:STORED_OUTPUT_CHARS], True


def _for_model(result: ToolResult) -> str:
    if result.ok:
        return result.output or "(the tool answered nothing)"
    return f"[{result.status}{': ' + result.error_code if result.error_code else ''}] {result.output}"


def _observation_chars(ctx: TurnContext) -> int:
    """What one tool result may hold for the model: a share of the room the context leaves."""
    room = max(0, ctx.context_tokens - ctx.output_tokens) * 4
    return max(1000, min(16_000, room // 8))
