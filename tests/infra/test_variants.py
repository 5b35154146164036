"""A second synthesis exercising what the shipped catalog does not (yet): authorizer
caching turned off, and bucket and secret grants on a function outside the VPC. It shows
the factory handles them, least-privilege and cdk-nag clean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from functions import catalog
from infra.config import StratusConfig
from shared.catalog import bucket, secret
from tests.infra.support import Synth, as_list, ref_logical_id, statements, synthesize

PROBE = catalog.Function(
    "probe-uploads", "functions.platform.health", "platform",
    catalog.Http("GET", "/api/v1/probe", permission="tenant:read"),
    access=(bucket("uploads", "read", "write", "delete"), bucket("payloads", "read"),
            secret("admin-token")),
    in_vpc=False,
)


@pytest.fixture(scope="module")
def variant(layer_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(catalog, "FUNCTIONS", (*catalog.FUNCTIONS, PROBE))
        result = synthesize(tmp_path_factory.mktemp("cdk.out.variant"),
                            {"authorizer_cache_ttl_s": "0", "stage": "test"})
    yield result


def test_ttl_zero_drops_the_identity_source_so_the_authorizer_always_runs(variant: Synth) -> None:
    ((_, _, authorizer),) = variant.resources("AWS::ApiGatewayV2::Authorizer")
    props = authorizer["Properties"]
    assert props["AuthorizerResultTtlInSeconds"] == 0
    assert "IdentitySource" not in props
    assert variant.function("health").env["AUTHORIZER_CACHE_TTL_S"] == "0"


def test_bucket_and_secret_grants_are_explicit_and_scoped(variant: Synth) -> None:
    probe = variant.function(PROBE.name)
    assert "VpcConfig" not in probe.props
    env = probe.env
    assert ref_logical_id(env["UPLOADS_BUCKET"]) and ref_logical_id(env["PAYLOADS_BUCKET"])
    assert ref_logical_id(env["ADMIN_TOKEN_SECRET_ARN"])
    role = ref_logical_id(probe.props["Role"])
    template = variant.templates[probe.stack]
    policies = [p for p in template.find_resources("AWS::IAM::Policy").values()
                if role in [ref_logical_id(r) for r in p["Properties"]["Roles"]]]
    granted = {(action, str(resource)) for p in policies for s in statements(p)
               for action in as_list(s["Action"]) for resource in as_list(s["Resource"])}
    actions = {action for action, _ in granted}
    assert {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:ListBucket",
            "secretsmanager:GetSecretValue"} <= actions
    assert not any(a.startswith("ec2:") for a in actions), "no ENI rights outside the VPC"
    # Object actions on <bucket>/* through the nested stack's named parameters.
    assert any(action == "s3:GetObject" and "PayloadsBucketArn" in resource and "/*" in resource
               for action, resource in granted)
    assert not any(action == "s3:PutObject" and "PayloadsBucketArn" in resource for action, resource in granted)
    assert {"UploadsBucketArn", "PayloadsBucketArn"} <= set(template.to_json()["Parameters"])


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        StratusConfig(stage="Prod!")
    with pytest.raises(ValueError):
        StratusConfig(authorizer_cache_ttl_s=7200)
    with pytest.raises(ValueError):
        StratusConfig(log_retention_days=31)
