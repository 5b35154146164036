"""Hard AWS limits the design budgets for: resources per stack, integrations per HTTP API,
and Lambda's 250 MB unzipped code + layers."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions import catalog
from infra.api import MAX_ROUTES
from infra.domain_stack import MAX_RESOURCES
from infra.packaging import (
    EXTENSION_ALLOWANCE_BYTES,
    FIRST_PARTY,
    LAMBDA_UNZIPPED_LIMIT_BYTES,
    WEB_ADAPTER_ALLOWANCE_BYTES,
    attached_layers_allowance,
    directory_bytes,
    function_package_bytes,
    generated_files,
)
from tests.infra.support import Synth


def test_one_nested_stack_per_domain(synth: Synth) -> None:
    assert sorted(synth.nested) == catalog.domains()
    assert len(synth.templates["root"].find_resources("AWS::CloudFormation::Stack")) == len(catalog.domains())


def test_every_stack_stays_under_400_resources(synth: Synth) -> None:
    counts = {name: len(t.to_json()["Resources"]) for name, t in synth.templates.items()}
    assert all(count < MAX_RESOURCES for count in counts.values()), counts


def test_http_api_stays_under_300_integrations(synth: Synth) -> None:
    assert len(synth.resources("AWS::ApiGatewayV2::Integration")) <= MAX_ROUTES


def _code_dir(synth: Synth, fn_name: str) -> Path:
    """The code asset directory the function's template points at (staging is disabled in
    the tests, so the asset path is the staged first-party code directory itself)."""
    deployed = synth.function(fn_name)
    path = deployed.resource["Metadata"]["aws:asset:path"]
    return Path(path)


@pytest.mark.parametrize("fn", catalog.FUNCTIONS, ids=lambda fn: fn.name)
def test_function_code_and_layers_unzip_under_250_mb(synth: Synth, layer_dirs: dict[str, Path],
                                                      fn: catalog.Function) -> None:
    code_dir = _code_dir(synth, fn.name)
    # The code asset holds the first-party packages and the generated start script, nothing else.
    assert sorted(p.name for p in code_dir.iterdir()) == sorted([*FIRST_PARTY, *generated_files()])
    size = directory_bytes(code_dir) + sum(directory_bytes(layer_dirs[name]) for name in fn.layers)
    # Layers attached by ARN are not on disk: the Parameters and Secrets extension on every
    # function, the Lambda Web Adapter on function URL functions.
    allowance = EXTENSION_ALLOWANCE_BYTES + (WEB_ADAPTER_ALLOWANCE_BYTES if isinstance(fn.trigger, catalog.FunctionUrl)
                                             else 0)
    assert attached_layers_allowance(fn) == allowance
    assert function_package_bytes(fn, code_dir) == size + allowance, "the synth-time check measures the same"
    assert size + allowance < LAMBDA_UNZIPPED_LIMIT_BYTES, f"{fn.name}: {(size + allowance) / 2**20:.1f} MiB"
