"""The ReAct text protocol's parser (shared/chat/react.py): what models really write."""

from __future__ import annotations

import pytest

from shared.chat import react


def test_an_action_with_its_input() -> None:
    step = react.parse('Thought: I need the forecast.\nAction: forecast\nAction Input: {"city": "Brest"}')
    assert (step.thought, step.action, step.arguments, step.problem, step.final_answer) == (
        "I need the forecast.", "forecast", {"city": "Brest"}, None, None)


@pytest.mark.parametrize("text", [
    '**Thought:** look it up\n**Action:** `forecast`\n**Action Input:** ```json\n{"city": "Brest"}\n```',
    'thought: look it up\naction: forecast\naction input: {"city": "Brest"} because it is asked',
    'Thought: look it up\nAction: forecast\nAction_Input:\n```\n{"city": "Brest"}\n```\nObservation: sunny',
    'Thought: look it up\nAction: "forecast"\nAction Input: {"city": "Brest"}\nFinal Answer: sunny (made up)',
])
def test_the_action_is_read_whatever_the_formatting(text: str) -> None:
    step = react.parse(text)
    assert (step.thought, step.action, step.arguments, step.final_answer) == (
        "look it up", "forecast", {"city": "Brest"}, None)


def test_a_made_up_observation_is_cut_off() -> None:
    step = react.parse('Action: add\nAction Input: {"a": 1}\nObservation: 3\nThought: done\nFinal Answer: 3')
    assert step.action == "add" and step.arguments == {"a": 1} and step.final_answer is None


def test_a_final_answer() -> None:
    step = react.parse("Thought: I know it.\nFinal Answer: It rains\nin Brest.")
    assert (step.thought, step.action, step.final_answer) == ("I know it.", None, "It rains\nin Brest.")


def test_a_reply_without_markers_is_the_answer() -> None:
    assert react.parse("Thought: Just some prose.").final_answer == "Just some prose."
    assert react.parse("Hello there").final_answer == "Hello there"


@pytest.mark.parametrize(("raw", "expected"), [("", {}), ("None", {}), ("{}", {})])
def test_an_action_without_input_has_no_arguments(raw: str, expected: dict[str, object]) -> None:
    step = react.parse(f"Action: current_time\nAction Input: {raw}")
    assert step.action == "current_time" and step.arguments == expected and step.problem is None
    assert react.parse("Action: current_time").arguments == {}


@pytest.mark.parametrize(("raw", "problem"), [
    ('{"city": "Brest"', "not valid JSON"), ("city=Brest", "JSON object"), ("[1, 2]", "JSON object")])
def test_an_input_that_is_not_an_object_is_a_problem_for_the_model(raw: str, problem: str) -> None:
    step = react.parse(f"Action: forecast\nAction Input: {raw}")
    assert step.action == "forecast" and step.arguments is None and problem in (step.problem or "")


def test_an_action_without_a_name_is_a_problem() -> None:
    step = react.parse("Action: \nAction Input: {}")
    assert step.problem is not None and "name the tool" in step.problem


def test_where_the_final_answer_starts_while_streaming() -> None:
    assert react.final_start("Thought: hm\nFinal Ans") is None
    text = "Thought: hm\nFinal Answer: Yes"
    begin = react.final_start(text)
    assert begin is not None and text[begin:] == "Yes"
    # An action first: the final answer after it does not count.
    assert react.final_start("Action: x\nAction Input: {}\nFinal Answer: y") is None
