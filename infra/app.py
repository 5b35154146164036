"""Build the CDK app: the root ``StratusStack`` of one stage, cdk-nag on every synth."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Tags

from infra import nag
from infra.config import StratusConfig
from infra.stratus_stack import StratusStack

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context (feature flags, defaults). The CDK CLI passes it itself; a plain
    ``python app.py`` or a test does not, and must synthesize the same thing."""
    try:
        return dict(json.loads(CDK_JSON.read_text()).get("context", {}))
    except FileNotFoundError:
        return {}


def stack_name(stage: str) -> str:
    return f"Stratus-{stage}"


def build_app(context: Mapping[str, Any] | None = None, *, outdir: str | None = None) -> App:
    """The app with the root stack for ``context['stage']`` (default ``dev``).

    ``context`` overrides cdk.json; the CLI's ``-c`` values (CDK_CONTEXT_JSON) override both.
    """
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    config = StratusConfig.from_context(app.node)
    # An account/region only when the CLI supplies them; otherwise the template is
    # environment-agnostic (tests, plain synth).
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = Environment(account=account, region=region) if account and region else None
    StratusStack(app, stack_name(config.stage), config=config, env=env,
                 termination_protection=config.termination_protection)
    # AWS::RDS::DBProxyTargetGroup takes no Tags in CloudFormation although CDK's L1 is taggable.
    untaggable = ["AWS::RDS::DBProxyTargetGroup"]
    Tags.of(app).add("project", "stratus", exclude_resource_types=untaggable)
    Tags.of(app).add("stratus:stage", config.stage, exclude_resource_types=untaggable)
    nag.apply_checks(app)
    return app


def root_stack(app: App) -> StratusStack:
    stacks = [child for child in app.node.children if isinstance(child, StratusStack)]
    if len(stacks) != 1:
        raise LookupError(f"expected one StratusStack, found {len(stacks)}")
    return stacks[0]
