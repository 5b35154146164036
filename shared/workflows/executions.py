"""The interpreter's executions through the Step Functions API (boto3, imported lazily)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class StepFunctionsExecutions:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def arn_of(self, name: str) -> str:
        return f"{self._arn.replace(':stateMachine:', ':execution:')}:{name}"

    def start(self, name: str, state: Mapping[str, Any]) -> str:
        try:
            response = self._client.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(state))
        except self._client.exceptions.ExecutionAlreadyExists:
            # A redelivered start: the execution it started is the one we want.
            return self.arn_of(name)
        return str(response["executionArn"])

    def stop(self, execution_arn: str, cause: str) -> None:
        try:
            self._client.stop_execution(executionArn=execution_arn, error="WorkflowRunCancelled", cause=cause[:1000])
        except self._client.exceptions.ExecutionDoesNotExist:
            return

    def status(self, execution_arn: str) -> str | None:
        try:
            return str(self._client.describe_execution(executionArn=execution_arn)["status"])
        except self._client.exceptions.ExecutionDoesNotExist:
            return None

    def succeed_task(self, task_token: str, output: Mapping[str, Any]) -> bool:
        errors = self._client.exceptions
        try:
            self._client.send_task_success(taskToken=task_token, output=json.dumps(output))
        except (errors.TaskTimedOut, errors.TaskDoesNotExist, errors.InvalidToken):
            return False
        return True
