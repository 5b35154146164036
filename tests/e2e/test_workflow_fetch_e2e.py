"""`make dev` honours STRATUS_EGRESS_ALLOW: the local runtime, started as a user starts it, runs
the fetch function (invoked through its local Lambda, as a caller in AWS would) with the
allow-list from its own environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from infra.local.runtime import AWS_PORT_FILE
from shared.workflows.fetch.ports import FetchRefused, FetchRequest
from shared.workflows.fetch.remote import LambdaFetcher
from tests.e2e.conftest import RunningRuntime, start_runtime
from tests.support.http_target import HttpTarget


@pytest.fixture(scope="module")
def narrowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    # Narrower than the test suite's own allow-list (127.0.0.0/8): only this address.
    running = start_runtime(tmp_path_factory.mktemp("e2e-fetch") / "state", STRATUS_EGRESS_ALLOW="127.0.0.1")
    yield running
    running.stop()


def _lambda(runtime: RunningRuntime) -> Any:
    port = (runtime.state_dir / AWS_PORT_FILE).read_text().strip()
    return boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(read_timeout=60, retries={"max_attempts": 1}))


def test_the_local_fetch_function_uses_the_runtimes_allow_list(narrowed: RunningRuntime) -> None:
    client = _lambda(narrowed)
    fetcher = LambdaFetcher(lambda: client, "workflow-fetch")
    with HttpTarget() as target:
        response = fetcher.fetch(FetchRequest("POST", target.url("/echo"), body=b"from a node"))
        assert response.status_code == 200
        assert json.loads(response.body)["path"] == "/echo"
        # Loopback, but not the address the runtime was told to allow.
        with pytest.raises(FetchRefused) as info:
            fetcher.fetch(FetchRequest("GET", target.url("/echo", host="127.0.0.2")))
        assert info.value.rule == "loopback" and "STRATUS_EGRESS_ALLOW" in info.value.message
        assert target.paths() == ["/echo"]
