"""A model shows ``configured: true`` only where a call can succeed: Bedrock runs on the
function's AWS role, which a deployed function has and the local runtime (moto) does not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared.config import reset_settings
from shared.models.credentials import configured as _configured
from shared.models.resolver import ResolvedModel
from shared.models.spec import ModelSpec


def model(source: str, **connection: str) -> ResolvedModel:
    spec = ModelSpec.model_validate({"name": "b", "display_name": "B", "protocol": "bedrock",
                                     "provider_model": "amazon.titan-embed-text-v2:0",
                                     "capabilities": ["embedding"], "dimensions": 1024,
                                     "connection": connection})
    return ResolvedModel(id=uuid.uuid4(), tenant_id=None, name="b", spec=spec, source=source,
                         has_credentials=False, created_at=None, updated_at=None, version=1)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    reset_settings()


@pytest.mark.parametrize("source", ["catalog", "tenant"])
def test_bedrock_is_configured_where_aws_is_real(runtime: pytest.MonkeyPatch, source: str) -> None:
    runtime.setenv("STRATUS_RUNTIME", "local")
    reset_settings()
    assert _configured(model(source)) is False
    assert _configured(model(source, base_url="https://bedrock-runtime.eu-west-1.amazonaws.com")) is True
    runtime.setenv("STRATUS_RUNTIME", "lambda")
    reset_settings()
    assert _configured(model(source)) is True
