"""Every state machine the catalog declares is valid ASL (statelint, no rule ignored), and the
machines that existed before the builders are exactly what they were."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from statelint.linter import Linter

from functions.catalog import FUNCTIONS, STATE_MACHINES, StateMachineSpec, StepFunctionsTask
from shared.stepfunctions.definitions import (
    load_definition,
    referenced_functions,
    render_definition,
    waits_for_task_tokens,
)

GOLDEN = Path(__file__).parent / "golden"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"


def _rendered(spec: StateMachineSpec) -> dict[str, object]:
    definition = load_definition(spec)
    arns = {name: ARN.format(name) for name in referenced_functions(spec)}
    return json.loads(render_definition(definition, arns))  # type: ignore[no-any-return]


# statelint 3.1.0 (the latest release) predates ``ReaderConfig.InputType``, which AWS requires of
# an S3 item reader's JSON file (docs/adr/0029, 0038): exactly that message is acknowledged.
_INPUT_TYPE_UNKNOWN = re.compile(r'^Field "InputType" not allowed in [A-Za-z .?]+\.ItemReader\.ReaderConfig$')


def _problems(definition: dict[str, object]) -> list[str]:
    return [problem for problem in Linter.validate(definition) if not _INPUT_TYPE_UNKNOWN.match(problem)]


@pytest.mark.parametrize("spec", STATE_MACHINES, ids=lambda spec: spec.name)
def test_statelint_finds_no_problem(spec: StateMachineSpec) -> None:
    assert _problems(_rendered(spec)) == []


def test_the_acknowledged_item_reader_message_is_the_only_one_hidden() -> None:
    (spec,) = [s for s in STATE_MACHINES if s.name == "workflow-run"]
    definition = _rendered(spec)
    reader = definition["States"]["Items"]["ItemReader"]  # type: ignore[index]
    assert reader["ReaderConfig"] == {"InputType": "JSON"}
    assert len(Linter.validate(definition)) == 1, "statelint reports the InputType it does not know"
    reader["ReaderConfig"]["MaxItemz"] = 3
    assert len(_problems(definition)) == 1, "any other problem of the reader is still reported"


def test_statelint_would_catch_a_broken_definition() -> None:
    # The check has teeth: a dangling Next and a float written as an integer are reported.
    broken = {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": ARN.format("x"), "Next": "Nowhere",
                                               "Retry": [{"ErrorEquals": ["States.ALL"], "BackoffRate": 2}]}}}
    problems = Linter.validate(broken)
    assert any("Nowhere" in p for p in problems) and any("BackoffRate" in p for p in problems)


@pytest.mark.parametrize("name", ["purge", "ingest", "knowledge-base-delete"])
def test_existing_machines_are_unchanged_by_the_builders(name: str) -> None:
    (spec,) = [s for s in STATE_MACHINES if s.name == name]
    assert load_definition(spec) == json.loads((GOLDEN / f"{name}.json").read_text())


@pytest.mark.parametrize("spec", STATE_MACHINES, ids=lambda spec: spec.name)
def test_task_functions_are_catalog_entries_of_that_machine(spec: StateMachineSpec) -> None:
    tasks = {fn.name for fn in FUNCTIONS
             if isinstance(fn.trigger, StepFunctionsTask) and fn.trigger.state_machine == spec.name}
    assert referenced_functions(spec) == tasks


@pytest.mark.parametrize("spec", STATE_MACHINES, ids=lambda spec: spec.name)
def test_express_machines_do_not_wait_for_task_tokens(spec: StateMachineSpec) -> None:
    assert spec.type in ("STANDARD", "EXPRESS")
    if spec.type == "EXPRESS":
        assert not waits_for_task_tokens(load_definition(spec))


_PATH_FIELDS = {"ItemsPath", "ResultPath", "InputPath", "OutputPath", "Variable"}


def _paths(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if isinstance(v, str) and (k.endswith(".$") or k in _PATH_FIELDS)]
        return found + [p for v in value.values() for p in _paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _paths(v)]
    return []


@pytest.mark.parametrize("spec", STATE_MACHINES, ids=lambda spec: spec.name)
def test_definitions_use_only_what_moto_runs(spec: StateMachineSpec) -> None:
    # docs/adr/0029: no JSONata, no variables, no nested executions, no indexed or filtered paths.
    definition = load_definition(spec)
    text = json.dumps(definition)
    for construct in ("JSONata", "QueryLanguage", '"Assign"', "states:startExecution"):
        assert construct not in text, construct
    paths = _paths(definition)
    assert paths, "the machine reads its state through paths"
    assert not [p for p in paths if "[" in p or "?" in p or "&&" in p or "||" in p]
