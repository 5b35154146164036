"""Agent configuration: defaults for stored configurations missing fields, placeholder
validation, prompt rendering, copy names and path references."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from shared.agents.api import CreateAgent
from shared.agents.config import AgentConfig, load_config, placeholders, render_system_prompt
from shared.agents.errors import AgentNotFound, AgentVersionNotFound
from shared.agents.paths import agent_ref, version_number
from shared.agents.service import copy_name
from shared.errors import ValidationFailed


def test_an_empty_or_old_config_loads_with_every_default() -> None:
    config = load_config({})
    assert config == AgentConfig()
    assert (config.schema_version, config.mode, config.model.name, config.model.temperature) == (1, "quick-answer",
                                                                                               None, 0.7)
    assert (config.memory.turns, config.memory.max_tokens, config.query_rewrite) == (10, 4000, False)
    old = load_config({"schema_version": 1, "system_prompt": "Hi", "knowledge": {"knowledge_base_ids": []}})
    assert old.system_prompt == "Hi" and old.knowledge.retrieval.top_k == 5


@pytest.mark.parametrize("config", [
    {"model": {"temperature": 2.01}},
    {"model": {"max_tokens": 0}},
    {"memory": {"turns": -1}},
    {"mode": "chatty"},
    {"extra": True},
    {"system_prompt": "x" * 20_001},
    {"suggested_questions": ["x" * 301]},
    {"knowledge": {"knowledge_base_ids": [str(uuid.uuid4()) for _ in range(11)]}},
    {"variables": [{"name": "a"}, {"name": "a"}]},
    {"variables": [{"name": "1a"}]},
    {"system_prompt": "Hello {{ name }}"},
    {"system_prompt": "Hello {{ first-name }}", "variables": [{"name": "first_name"}]},
])
def test_invalid_configs_are_refused(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AgentConfig.model_validate(config)


def test_placeholders_in_order_of_first_use() -> None:
    assert placeholders("{{b}} {{ a }} {{b}} {x} {{  c\t}}") == ["b", "a", "c"]


def test_render_fills_inputs_defaults_and_blanks_once() -> None:
    config = AgentConfig.model_validate({
        "system_prompt": "You work for {{company}} on {{ topic }}. {{note}}",
        "variables": [{"name": "company", "required": True}, {"name": "topic", "default": "billing"},
                      {"name": "note"}]})
    assert render_system_prompt(config, {"company": "Acme"}) == "You work for Acme on billing. "
    # Values are not expanded again; numbers are written as text; unknown inputs are ignored.
    assert render_system_prompt(config, {"company": "{{topic}}", "topic": 42, "other": "x"}) == \
        "You work for {{topic}} on 42. "


@pytest.mark.parametrize("inputs", [{}, {"company": ""}, {"company": "   "}, {"company": None}])
def test_a_missing_required_input_names_the_field(inputs: dict[str, object]) -> None:
    config = AgentConfig.model_validate({"system_prompt": "For {{company}}",
                                         "variables": [{"name": "company", "required": True, "label": "Company"}]})
    with pytest.raises(ValidationFailed) as err:
        render_system_prompt(config, inputs)
    assert err.value.status == 422 and err.value.code == "agent_input_invalid"
    assert err.value.details["fields"][0]["field"] == "inputs.company"
    assert "Company is required" in err.value.message


def test_inputs_must_be_text_of_bounded_size() -> None:
    config = AgentConfig.model_validate({"system_prompt": "{{x}}", "variables": [{"name": "x"}]})
    for bad in ({"x": ["a"]}, {"x": True}, {"x": "y" * 10_001}):
        with pytest.raises(ValidationFailed) as err:
            render_system_prompt(config, bad)
        assert err.value.details["fields"][0]["field"] == "inputs.x"


def test_avatar_is_an_https_url_or_a_short_emoji() -> None:
    assert CreateAgent(name="a", avatar="🤖").avatar == "🤖"
    assert CreateAgent(name="a", avatar="https://cdn.example.com/a.png").avatar == "https://cdn.example.com/a.png"
    assert CreateAgent(name="a", avatar="").avatar is None
    for bad in ("http://example.com/a.png", "https://exa mple.com", "a very long badge text", "https://" + "a" * 500):
        with pytest.raises(ValidationError):
            CreateAgent(name="a", avatar=bad)


def test_copy_names_are_numbered_and_fit() -> None:
    assert copy_name("Bot", set()) == "Bot (copy)"
    assert copy_name("Bot", {"bot (copy)", "bot (copy 2)"}) == "Bot (copy 3)"
    long = copy_name("x" * 100, set())
    assert len(long) == 100 and long.endswith(" (copy)")


def test_path_references() -> None:
    agent_id = uuid.uuid4()
    assert agent_ref(str(agent_id)) == agent_id
    assert agent_ref("builtin-quick-answer") == "builtin-quick-answer"
    for bad in ("quick-answer", "builtin-", "builtin-A", "", "x" * 200):
        with pytest.raises(AgentNotFound):
            agent_ref(bad)
    assert version_number("12") == 12
    for bad in ("0", "-1", "x", "²", "99999999999"):
        with pytest.raises(AgentVersionNotFound):
            version_number(bad)
