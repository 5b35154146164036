"""Every public entry point of the tenancy, models and agents services is traced (an X-Ray
subsegment per use case, Powertools' ``tracer.capture_method``)."""

from __future__ import annotations

import inspect

import pytest

from shared.agents.service import AgentService
from shared.models.service import ModelService
from shared.tenancy.service import TenancyService


@pytest.mark.parametrize("service", [TenancyService, ModelService, AgentService], ids=lambda c: c.__name__)
def test_public_methods_are_traced(service: type) -> None:
    public = [name for name, member in vars(service).items()
              if inspect.isfunction(member) and not name.startswith("_")]
    assert public
    untraced = [name for name in public if not hasattr(getattr(service, name), "__wrapped__")]
    assert not untraced, f"{service.__name__}: not traced: {untraced}"
