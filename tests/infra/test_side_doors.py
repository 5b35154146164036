"""No side doors (docs/adr/0047-concurrency-budget-and-side-doors.md), on the synthesized templates:
CloudFront sends the origin secret on both kinds of origin, the template never holds its value,
the authorizer takes it as an identity source, every edge-facing function knows the secret, and
the WAF option builds a per-IP rate rule and AWS's managed rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from functions import catalog
from infra.config import StratusConfig
from infra.edge import WAF_COUNTED_COMMON_RULES, edge_web_acl
from infra.nag import logical_id as cfn_logical_id
from shared.auth.origin import ORIGIN_HEADER
from shared.catalog import Authorizer, DefaultRoute, FunctionUrl, Http
from tests.infra.support import Synth, synthesize

EDGE_FACING = [fn for fn in catalog.FUNCTIONS if isinstance(fn.trigger, (Http, DefaultRoute, Authorizer, FunctionUrl))]


def _distribution(synth: Synth) -> dict[str, Any]:
    (dist,) = synth.templates["root"].find_resources("AWS::CloudFront::Distribution").values()
    return dict(dist["Properties"]["DistributionConfig"])


def _secret_id(synth: Synth) -> str:
    return cfn_logical_id(synth.root.data.origin_secret)


def test_every_origin_carries_the_origin_secret_as_a_dynamic_reference(synth: Synth) -> None:
    origins = _distribution(synth)["Origins"]
    # The HTTP API and each function URL.
    assert len(origins) == 1 + len(catalog.streaming_functions())
    secret = _secret_id(synth)
    for origin in origins:
        (header,) = [h for h in origin["OriginCustomHeaders"] if h["HeaderName"] == ORIGIN_HEADER]
        value = json.dumps(header["HeaderValue"])
        assert "{{resolve:secretsmanager:" in value and secret in value, value


def test_the_template_never_holds_the_secret_value(synth: Synth) -> None:
    secret = synth.json("root")["Resources"][_secret_id(synth)]["Properties"]
    assert "SecretString" not in secret and secret["GenerateSecretString"]["PasswordLength"] >= 32


def test_the_authorizer_requires_the_origin_header_as_an_identity_source(synth: Synth) -> None:
    (_, _, authorizer), = synth.resources("AWS::ApiGatewayV2::Authorizer")
    sources = authorizer["Properties"]["IdentitySource"]
    assert f"$request.header.{ORIGIN_HEADER}" in sources
    assert "$request.header.Authorization" in sources


def test_every_edge_facing_function_knows_the_secret(synth: Synth) -> None:
    assert {"chat", "workflow-stream", "authorizer", "default-route", "health"} <= {fn.name for fn in EDGE_FACING}
    for fn in EDGE_FACING:
        env = synth.function(fn.name).env
        assert "ORIGIN_SECRET_ARN" in env, fn.name
    # And only they do: a step or a schedule has no edge in front of it.
    for fn in catalog.FUNCTIONS:
        if fn not in EDGE_FACING:
            assert "ORIGIN_SECRET_ARN" not in synth.function(fn.name).env, fn.name


def test_the_function_urls_have_reserved_concurrency(synth: Synth) -> None:
    for fn in catalog.streaming_functions():
        assert synth.function(fn.name).props["ReservedConcurrentExecutions"] >= 1


def test_no_waf_by_default_and_the_acknowledgment_says_how_to_add_one(synth: Synth) -> None:
    assert "WebACLId" not in _distribution(synth)
    assert not synth.templates["root"].find_resources("AWS::WAFv2::WebACL")


def test_waf_web_acl_limits_each_client_ip_and_uses_managed_rules() -> None:
    stack = Stack(App(), "Waf")
    edge_web_acl(stack, "WebAcl", name="stratus-dev-edge", rate_limit=1500)
    (acl,) = Template.from_stack(stack).find_resources("AWS::WAFv2::WebACL").values()
    props = acl["Properties"]
    assert props["Scope"] == "CLOUDFRONT" and props["DefaultAction"] == {"Allow": {}}
    rules = {rule["Name"]: rule for rule in props["Rules"]}
    rate = rules["RatePerClientIp"]["Statement"]["RateBasedStatement"]
    assert rate == {"AggregateKeyType": "IP", "Limit": 1500, "EvaluationWindowSec": 300}
    assert rules["RatePerClientIp"]["Action"] == {"Block": {}}
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    # Bodies up to the API's own limit: the 8 KB body rule only counts.
    assert [o["Name"] for o in common["RuleActionOverrides"]] == list(WAF_COUNTED_COMMON_RULES)
    assert "AWSManagedRulesKnownBadInputsRuleSet" in rules


def test_waf_config_options_parse() -> None:
    assert StratusConfig().waf is False
    config = StratusConfig(waf_web_acl_arn="arn:aws:wafv2:us-east-1:1:global/webacl/x/y")
    assert config.waf_web_acl_arn is not None


def test_a_rotation_names_the_new_version_so_the_deploy_updates_the_distribution(
        layer_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, synth: Synth) -> None:
    # CloudFormation re-resolves a dynamic reference only when the template changes: the
    # unversioned reference would keep CloudFront on the old value after a put-secret-value.
    version = "0f3c2a5e-6b7d-4c1e-9a8b-123456789abc"
    rotated = synthesize(tmp_path_factory.mktemp("cdk.out.rotated"), {"origin_secret_version": version})
    for s, suffix in ((synth, ":SecretString:::}}"), (rotated, f":SecretString:::{version}}}}}")):
        for origin in _distribution(s)["Origins"]:
            (header,) = [h for h in origin["OriginCustomHeaders"] if h["HeaderName"] == ORIGIN_HEADER]
            parts = header["HeaderValue"]["Fn::Join"][1]
            assert parts[0] == "{{resolve:secretsmanager:" and parts[-1] == suffix, parts
    with pytest.raises(ValueError, match="VersionId"):
        StratusConfig(origin_secret_version="AWSCURRENT")
