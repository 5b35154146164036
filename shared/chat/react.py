"""The ReAct text protocol, for models without native function calling: the prompt that teaches
it, and a forgiving parser of what a model writes back.

A step is either an action::

    Thought: I need the forecast.
    Action: forecast
    Action Input: {"city": "Brest"}

(the platform answers ``Observation: <the tool's result>`` and asks again), or the answer::

    Thought: I know it now.
    Final Answer: It will rain in Brest.

The parser takes what models really write: markers in any case, in bold (``**Action:**``) or
with extra spaces; the input in a code fence, with text after it, or missing (no arguments);
an ``Observation:`` the model made up itself (cut off: only the tool's counts); a reply with
neither an action nor a final answer (it is the answer)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.tools.contract import ToolSpec

# A marker at the start of a line: optional markdown emphasis around the word and the colon.
_EMPHASIS = r"[ \t]*[*_]{0,2}[ \t]*"


def _mark(word: str) -> str:
    return r"(?:^|\n)" + _EMPHASIS + word + r"[ \t]*[*_]{0,2}[ \t]*:[*_]{0,2}[ \t]*"


FINAL = re.compile(_mark(r"final[ \t_]*answer"), re.IGNORECASE)
# "Action:" but not "Action Input:".
ACTION = re.compile(_mark(r"action"), re.IGNORECASE)
ACTION_INPUT = re.compile(_mark(r"action[ \t_]*input"), re.IGNORECASE)
OBSERVATION = re.compile(_mark(r"observation"), re.IGNORECASE)
THOUGHT = re.compile(r"^\s*" + _EMPHASIS + r"thought[ \t]*[*_]{0,2}[ \t]*:[*_]{0,2}[ \t]*", re.IGNORECASE)
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```", re.DOTALL)
STOP = ["\nObservation:"]
_SCHEMA_CHARS = 1500


@dataclass(frozen=True)
class ReactStep:
    thought: str
    # An action: the tool's name, its input as written, and the arguments (None when the input
    # is not a JSON object: ``problem`` says why).
    action: str | None = None
    action_input: str = ""
    arguments: dict[str, Any] | None = None
    problem: str | None = None
    # The answer (None for an action).
    final_answer: str | None = None


def instructions(tools: Sequence[tuple[str, ToolSpec]], tool_choice: str) -> str:
    """The system prompt's addition that teaches the protocol and lists the tools."""
    lines = ["You can use tools to answer. The tools:"]
    for name, spec in tools:
        schema = json.dumps(spec.parameters, ensure_ascii=False, separators=(",", ":"))
        if len(schema) > _SCHEMA_CHARS:
            schema = schema[:_SCHEMA_CHARS] + "…"
        description = " ".join(spec.description.split())[:500]
        lines.append(f"- {name}: {description} Arguments (JSON schema): {schema}")
    lines += [
        "",
        "To use a tool, reply in exactly this format and then stop:",
        "Thought: what you need and why",
        "Action: the tool's name, one of [" + ", ".join(name for name, _ in tools) + "]",
        "Action Input: the arguments as one JSON object",
        "",
        "The tool's result comes back as \"Observation: ...\". Use as many steps as you need. When you can "
        "answer, reply:",
        "Thought: why you can answer now",
        "Final Answer: the answer for the user",
    ]
    if tool_choice == "required":
        lines.append("Use at least one tool before the final answer.")
    elif tool_choice not in ("auto", "none"):
        lines.append(f"Start by using the tool {tool_choice}.")
    return "\n".join(lines)


FINISH_NOW = ("You cannot use tools any more. Reply now with \"Final Answer:\" and the best answer you can give "
              "from the observations so far.")


def observation(output: str) -> str:
    return "Observation: " + output


def final_start(text: str) -> int | None:
    """Where the final answer begins in a step's text so far (after its marker), or None while
    no ``Final Answer:`` came before any ``Action:``."""
    final = FINAL.search(text)
    if final is None:
        return None
    action = ACTION.search(text, 0, final.start() + 1)
    if action is not None and action.start() < final.start():
        return None
    return final.end()


def parse(text: str) -> ReactStep:
    """A step from the model's whole reply."""
    observed = OBSERVATION.search(text)
    if observed is not None:
        text = text[:observed.start()]
    final = FINAL.search(text)
    action = ACTION.search(text)
    if action is not None and (final is None or action.start() < final.start()):
        thought = _thought(text[:action.start()])
        rest = text[action.end():]
        given = ACTION_INPUT.search(rest)
        name_part = rest[:given.start()] if given is not None else rest.split("\n", 1)[0]
        name = _name(name_part)
        raw = rest[given.end():].strip() if given is not None else ""
        if final is not None and given is not None:
            # "Final Answer:" after the input: the model went on; the action counts.
            cut = FINAL.search(raw)
            raw = raw[:cut.start()].strip() if cut is not None else raw
        arguments, problem = _arguments(raw)
        if not name:
            problem = "Action: name the tool to use"
        return ReactStep(thought=thought, action=name, action_input=raw, arguments=arguments, problem=problem)
    if final is not None:
        return ReactStep(thought=_thought(text[:final.start()]), final_answer=text[final.end():].strip())
    # Neither: the reply is the answer (without a leading "Thought:").
    return ReactStep(thought="", final_answer=_thought(text))


def _thought(text: str) -> str:
    return THOUGHT.sub("", text, count=1).strip()


def _name(text: str) -> str:
    name = text.strip().split("\n", 1)[0].strip()
    name = name.strip("`*_\"' \t")
    # "forecast(city=...)" or "forecast tool": the leading identifier.
    match = re.match(r"[A-Za-z0-9_-]+", name)
    return match.group(0) if match else ""


def _arguments(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    text = raw.strip()
    fenced = _FENCE.match(text)
    if fenced is not None:
        text = fenced.group(1).strip()
    if not text or text.lower() in ("none", "null", "{}", "n/a"):
        return {}, None
    start = text.find("{")
    if start < 0:
        return None, "Action Input: give the arguments as a JSON object, e.g. {\"name\": \"value\"}"
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        return None, f"Action Input is not valid JSON ({exc.msg} at character {exc.pos + 1}): give one JSON object"
    if not isinstance(value, dict):
        return None, "Action Input: give the arguments as a JSON object"
    return value, None
