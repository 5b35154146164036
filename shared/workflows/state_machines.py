"""The workflow interpreter's state machine (docs/adr/0029-workflow-interpreter-infrastructure.md):
a step loop that runs any workflow as data. Built with the shared ASL builders, from what
moto's interpreter runs correctly, so the same machine runs locally."""

from __future__ import annotations

from typing import Any

from shared.stepfunctions.asl import (
    ALL_ERRORS,
    DISCARD,
    EXCEEDED_TOLERATED_FAILURES,
    MAP_ITEM_VALUE,
    TIMEOUT,
    catch,
    chain,
    choice,
    distributed_map,
    end,
    fail,
    goto,
    lambda_task,
    machine,
    map_state,
    pass_state,
    pass_through,
    retry,
    s3_json_items,
    succeed,
    wait_for_task_token,
    when_boolean,
    when_string,
)
from shared.stepfunctions.policies import LAMBDA_TRANSIENT_ERRORS, lambda_retries

# Parallel branches of one run at a time: each is a Lambda invocation, and a wide fan-out of
# one run should not take the account's concurrency from every other run.
MAX_PARALLEL_BRANCHES = 10
RUN_FAILED = "WorkflowRunFailed"
# A long iteration's child execution that ends the Map run early (docs/adr/0038).
ITERATION_STOPPED = "IterationStopped"
# The engine's transient infrastructure failures (shared.workflows.interpreter.TaskInterrupted):
# the database or the cache away for a moment. Every task is idempotent, so it runs again.
INTERRUPTED = retry(["TaskInterrupted"], interval_s=1, max_attempts=5, backoff_rate=2.0)


# The await task's Lambda failures, but not its timeout: that is the person's time running out,
# handled by InputTimedOut, never a reason to pause again.
AWAIT_RETRY = retry([error for error in LAMBDA_TRANSIENT_ERRORS if error != TIMEOUT], interval_s=2, max_attempts=4,
                    backoff_rate=2.0)


def run_definition() -> dict[str, Any]:
    ids = pass_through("run_id", "tenant_id", "cursor")
    # A task that gives up fails the run, recorded where the user sees it (docs/architecture.md §7.3).
    gave_up = [catch([ALL_ERRORS], "RecordFailure", result_path="$.error")]
    branch = machine(chain(
        # The next step finds a node that gave up without a result, and fails the run.
        ("RunNode", end(lambda_task("workflow-branch", payload={**ids, "node_id.$": "$.node_id"},
                                    retry_policy=lambda_retries(INTERRUPTED),
                                    catch_rules=[catch([ALL_ERRORS], "NodeGaveUp", result_path=DISCARD)]))),
        ("NodeGaveUp", pass_state()),
    ))
    # A long iteration (docs/adr/0038-long-iterations-distributed-map.md): one child execution
    # per batch of items. Each ends with an empty output, so the Map's result stays small
    # whatever the number of items; the results are in the payloads bucket.
    items = machine(chain(
        # A batch that gives up ends quietly: the join finds it without a result.
        ("RunItems", lambda_task("workflow-items", payload={**ids, "node_id.$": "$.node_id", "batch.$": "$.batch"},
                                 result_path="$.result", retry_policy=lambda_retries(INTERRUPTED),
                                 catch_rules=[catch([ALL_ERRORS], "ItemsDone", result_path=DISCARD)])),
        # An item failed under "terminated": this child fails, so Step Functions ends the Map run
        # (no failure is tolerated) and the join reports the failed item.
        ("Stop?", choice(when_boolean("$.result.stop", True, "ItemsStopped"), default="ItemsDone")),
        ("ItemsStopped", fail(ITERATION_STOPPED, "An item failed and the iteration terminates")),
        ("ItemsDone", end(pass_state(result={}))),
    ))
    return machine(chain(
        ("Step", lambda_task("workflow-step", payload=ids, retry_policy=lambda_retries(INTERRUPTED),
                             catch_rules=gave_up)),
        ("Next?", choice(when_string("$.next", "step", "Step"),
                         when_string("$.next", "branches", "Branches"),
                         when_string("$.next", "wait", "AwaitInput"),
                         when_string("$.next", "items", "Items"),
                         when_string("$.next", "continue", "ContinueAsNew"),
                         when_string("$.next", "done", "Done"),
                         default="Failed")),
        ("Branches", goto(map_state(branch, items_path="$.nodes", max_concurrency=MAX_PARALLEL_BRANCHES,
                                    item_parameters={**ids, "node_id.$": MAP_ITEM_VALUE}, result_path=DISCARD,
                                    catch_rules=gave_up), "Step")),
        ("Items", goto(distributed_map(
            items, item_reader=s3_json_items(bucket_path="$.reader.bucket", key_path="$.reader.key"),
            max_concurrency_path="$.reader.concurrency",
            item_selector={**ids, "node_id.$": "$.node_id", "batch.$": MAP_ITEM_VALUE}, result_path=DISCARD,
            # A terminating iteration's Map run ends failed (AWS; moto tolerates failures): the
            # step joins it all the same.
            catch_rules=[catch([EXCEEDED_TOLERATED_FAILURES], "JoinItems", result_path=DISCARD), *gave_up]),
            "JoinItems")),
        # The step again, told which iteration to join first (the Step state passes ids only).
        ("JoinItems", goto(lambda_task("workflow-step", payload={**ids, "next": "items", "node_id.$": "$.node_id"},
                                       retry_policy=lambda_retries(INTERRUPTED), catch_rules=gave_up), "Next?")),
        # Human input (docs/adr/0036): the execution waits on the task token (costing nothing)
        # until the runs API answers it, or the node's timeout passes.
        ("AwaitInput", goto(wait_for_task_token(
            "workflow-await", payload={**ids, "node_id.$": "$.node_id"}, result_path=DISCARD,
            timeout_path="$.timeout_s", retry_policy=[AWAIT_RETRY],
            catch_rules=[catch([TIMEOUT], "InputTimedOut", result_path=DISCARD), *gave_up]), "Step")),
        # The step again, told which pause timed out (its defaults, or its failure, first).
        ("InputTimedOut", goto(lambda_task("workflow-step", payload={**ids, "next": "timeout",
                                                                      "node_id.$": "$.node_id"},
                                           retry_policy=lambda_retries(INTERRUPTED), catch_rules=gave_up), "Next?")),
        ("ContinueAsNew", lambda_task("workflow-continue", payload=ids, result_path=DISCARD,
                                      retry_policy=lambda_retries(), catch_rules=gave_up)),
        ("Continued", succeed()),
        ("Done", succeed()),
        ("RecordFailure", goto(lambda_task("workflow-fail", payload={**ids, "error.$": "$.error"},
                                           result_path=DISCARD, retry_policy=lambda_retries(),
                                           catch_rules=[catch([ALL_ERRORS], "Failed", result_path=DISCARD)]),
                               "Failed")),
        ("Failed", fail(RUN_FAILED, "The workflow run failed; its error is recorded with the run")),
    ), comment="Workflow interpreter: run any workflow version as data, one step at a time")
