"""The interpreter's executions through the Step Functions API (boto3, imported lazily)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class StepFunctionsExecutions:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def start(self, name: str, state: Mapping[str, Any]) -> str:
        try:
            response = self._client.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(state))
        except self._client.exceptions.ExecutionAlreadyExists:
            # A redelivered carry-on: the execution it started is the one we want.
            return f"{self._arn.replace(':stateMachine:', ':execution:')}:{name}"
        return str(response["executionArn"])
