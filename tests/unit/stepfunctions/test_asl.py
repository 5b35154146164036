"""The ASL builders: wiring, placeholders, and refusing what moto evaluates unlike AWS."""

from __future__ import annotations

import pytest
from statelint.linter import Linter

from shared.stepfunctions import asl
from shared.stepfunctions.policies import LAMBDA_TRANSIENT, lambda_retries, task_failed_retry


def test_chain_wires_next_and_end_and_leaves_choices_alone() -> None:
    states = asl.chain(
        ("A", asl.lambda_task("purge-table")),
        ("B?", asl.choice(asl.when_boolean("$.done", False, "A"), default="C")),
        ("C", asl.pass_state()),
        ("D", asl.end(asl.pass_state())),
        ("E", asl.succeed()),
    )
    assert states["A"]["Next"] == "B?"
    assert "Next" not in states["B?"] and "End" not in states["B?"]
    assert states["C"]["Next"] == "D"
    assert states["D"] == {"Type": "Pass", "End": True}
    assert states["E"] == {"Type": "Succeed"}
    assert asl.chain(("Only", asl.pass_state()))["Only"]["End"] is True
    with pytest.raises(ValueError, match="duplicate"):
        asl.chain(("A", asl.pass_state()), ("A", asl.succeed()))


def test_result_path_keep_discard_and_path() -> None:
    assert "ResultPath" not in asl.lambda_task("x")
    assert asl.lambda_task("x", result_path=asl.DISCARD)["ResultPath"] is None
    assert asl.lambda_task("x", result_path="$.out")["ResultPath"] == "$.out"
    assert asl.catch([asl.ALL_ERRORS], "Next", result_path=asl.DISCARD) == {
        "ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Next"}


@pytest.mark.parametrize("bad", ["$.items[0]", "$.items[?(@.a)]", "items", "$.a && $.b"])
def test_paths_moto_evaluates_differently_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        asl.path(bad)
    with pytest.raises(ValueError):
        asl.lambda_task("x", payload={"value.$": bad})


def test_function_placeholders() -> None:
    assert asl.fn("documents-finish") == "${fn:documents-finish}"
    with pytest.raises(ValueError):
        asl.fn("bad name}")
    definition = asl.machine(asl.chain(("A", asl.lambda_task("a")), ("B", asl.wait_for_task_token("b", payload={}))))
    assert asl.referenced_functions(definition) == {"a", "b"}


def test_wait_for_task_token_hands_the_token_to_the_function() -> None:
    state = asl.wait_for_task_token("workflow-await", payload=asl.pass_through("run_id"), heartbeat_s=60)
    assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert state["Parameters"] == {"FunctionName": "${fn:workflow-await}",
                                   "Payload": {"run_id.$": "$.run_id", "task_token.$": "$$.Task.Token"}}
    assert state["HeartbeatSeconds"] == 60


def test_distributed_map_with_an_s3_item_reader_is_valid_asl() -> None:
    processor = asl.machine(asl.chain(("Item", asl.lambda_task("x", retry_policy=lambda_retries()))))
    state = asl.distributed_map(processor, item_reader=asl.s3_json_items(bucket_path="$.bucket", key_path="$.key"),
                                item_selector={"item.$": asl.MAP_ITEM_VALUE}, max_concurrency=50,
                                child_type="EXPRESS", tolerated_failure_percentage=5, result_path=asl.DISCARD)
    assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}
    definition = asl.machine(asl.chain(("Items", state)))
    rendered = {**definition}
    rendered["States"] = {"Items": {**state, "ItemProcessor": {
        **state["ItemProcessor"], "States": {"Item": {**processor["States"]["Item"],
                                                      "Resource": "arn:aws:lambda:us-east-1:1:function:x"}}},
        "End": True}}
    # statelint 3.1.0 predates ReaderConfig.InputType, which AWS requires for a JSON file read
    # with s3:getObject: that is its only complaint (docs/adr/0029).
    assert Linter.validate(rendered) == [
        'Field "InputType" not allowed in State Machine.States.Items.ItemReader.ReaderConfig']
    with pytest.raises(ValueError):
        asl.distributed_map(processor, item_reader={}, child_type="SOMETIMES")


def test_shared_retry_policies() -> None:
    assert lambda_retries()[0] is LAMBDA_TRANSIENT
    assert LAMBDA_TRANSIENT["BackoffRate"] == 2.0 and isinstance(LAMBDA_TRANSIENT["BackoffRate"], float)
    assert "Lambda.TooManyRequestsException" in LAMBDA_TRANSIENT["ErrorEquals"]
    extra = task_failed_retry(interval_s=10, max_attempts=5)
    assert lambda_retries(extra) == [LAMBDA_TRANSIENT, extra]
    assert extra == {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 10, "MaxAttempts": 5,
                     "BackoffRate": 2.0}
