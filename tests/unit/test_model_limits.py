"""A model's limits are defined once (shared.models.spec.ModelLimits): catalog specs, a tenant
model's create body and its update body take the same fields with the same bounds, flat on
the wire."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.models.api import CreateModel, UpdateModel
from shared.models.spec import ModelLimits, ModelSpec

SPEC = {"name": "m", "display_name": "M", "protocol": "openai", "provider_model": "x", "capabilities": ["chat"]}
CREATE = {"name": "m", "protocol": "openai", "provider_model": "x"}
OUT_OF_BOUNDS = [("max_context_tokens", 0), ("max_output_tokens", 0), ("max_batch_size", 0),
                 ("max_batch_size", 4097), ("max_input_tokens", 0), ("dimensions", 0), ("dimensions", 16_001)]


def test_spec_and_create_body_inherit_the_limits_with_their_defaults() -> None:
    limits = ModelLimits()
    spec, create = ModelSpec.model_validate(SPEC), CreateModel.model_validate(CREATE)
    for name in ModelLimits.model_fields:
        assert getattr(spec, name) == getattr(create, name) == getattr(limits, name), name
    assert create.model_dump(include={"max_batch_size"}) == {"max_batch_size": 64}  # flat, not nested


@pytest.mark.parametrize(("field", "value"), OUT_OF_BOUNDS)
@pytest.mark.parametrize(("model", "base"), [(ModelSpec, SPEC), (CreateModel, CREATE), (UpdateModel, {})],
                         ids=["spec", "create", "update"])
def test_every_shape_refuses_the_same_out_of_bounds_values(model: type[BaseModel], base: dict[str, Any],
                                                           field: str, value: int) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**base, field: value})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_updates_leave_limits_out_and_schemas_keep_their_bounds() -> None:
    empty = UpdateModel()
    assert all(getattr(empty, name) is None for name in ModelLimits.model_fields)
    create = CreateModel.model_json_schema()["properties"]["max_batch_size"]
    assert (create["minimum"], create["maximum"], create["default"]) == (1, 4096, 64)
    update = UpdateModel.model_json_schema()["properties"]["max_batch_size"]["anyOf"][0]
    assert (update["minimum"], update["maximum"]) == (1, 4096)
