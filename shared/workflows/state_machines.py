"""The workflow interpreter's state machine (docs/adr/0029-workflow-interpreter-infrastructure.md):
a step loop that runs any workflow as data. Built with the shared ASL builders, from what
moto's interpreter runs correctly, so the same machine runs locally."""

from __future__ import annotations

from typing import Any

from shared.stepfunctions.asl import (
    ALL_ERRORS,
    DISCARD,
    MAP_ITEM_VALUE,
    catch,
    chain,
    choice,
    end,
    fail,
    goto,
    lambda_task,
    machine,
    map_state,
    pass_state,
    pass_through,
    retry,
    succeed,
    wait_for_task_token,
    when_string,
)
from shared.stepfunctions.policies import lambda_retries

# Parallel branches of one run at a time: each is a Lambda invocation, and a wide fan-out of
# one run should not take the account's concurrency from every other run.
MAX_PARALLEL_BRANCHES = 10
RUN_FAILED = "WorkflowRunFailed"
# The engine's transient infrastructure failures (shared.workflows.interpreter.TaskInterrupted):
# the database or the cache away for a moment. Every task is idempotent, so it runs again.
INTERRUPTED = retry(["TaskInterrupted"], interval_s=1, max_attempts=5, backoff_rate=2.0)


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
    return machine(chain(
        ("Step", lambda_task("workflow-step", payload=ids, retry_policy=lambda_retries(INTERRUPTED),
                             catch_rules=gave_up)),
        ("Next?", choice(when_string("$.next", "step", "Step"),
                         when_string("$.next", "branches", "Branches"),
                         when_string("$.next", "wait", "AwaitInput"),
                         when_string("$.next", "continue", "ContinueAsNew"),
                         when_string("$.next", "done", "Done"),
                         default="Failed")),
        ("Branches", goto(map_state(branch, items_path="$.nodes", max_concurrency=MAX_PARALLEL_BRANCHES,
                                    item_parameters={**ids, "node_id.$": MAP_ITEM_VALUE}, result_path=DISCARD,
                                    catch_rules=gave_up), "Step")),
        ("AwaitInput", goto(wait_for_task_token("workflow-await", payload={**ids, "node_id.$": "$.node_id"},
                                                result_path=DISCARD, retry_policy=lambda_retries(),
                                                catch_rules=gave_up), "Step")),
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
