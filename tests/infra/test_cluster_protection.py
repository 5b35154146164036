"""What the cluster deletion-protection plan (docs/adr/0048) relies on, on the synthesized
templates of both profiles: the cluster is created unprotected and kept by snapshot; one custom
resource sets the profile's protection, only on that cluster, after every other resource of the
root stack (a first deploy failing anywhere can still delete the new cluster), and again after
any change to the cluster resource (whose CloudFormation update sends the template's false)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.app import cdk_json_context
from infra.config import StratusConfig
from infra.migrations import CLUSTER_DIGEST_PROPERTY
from tests.infra.support import Synth, as_list, synthesize

PROD_EXTRAS = {"alarm_email": "ops@example.com", "upload_cors_origins": "https://app.example.com"}
PROTECTION = "Custom::StratusClusterDeletionProtection"


@pytest.fixture(scope="module")
def prod(layer_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize(tmp_path_factory.mktemp("cdk.out.prod-protection"), {"stage": "prod", **PROD_EXTRAS})


@pytest.fixture(params=["dev", "prod"])
def stage(request: pytest.FixtureRequest, synth: Synth, prod: Synth) -> tuple[StratusConfig, Synth]:
    context = {**cdk_json_context(), "stage": request.param, **(PROD_EXTRAS if request.param == "prod" else {})}
    return StratusConfig.from_values(context), (synth if request.param == "dev" else prod)


def _call(value: Any) -> dict[str, Any]:
    """An AwsCustomResource call (a Fn::Join around Refs) as JSON, each Ref as <logical id>."""
    parts = value["Fn::Join"][1] if isinstance(value, dict) else [value]
    return dict(json.loads("".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)))


def _one(root: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, r) for k, r in root.items() if r["Type"] == resource_type]
    return found


def test_the_cluster_is_created_unprotected_and_kept_by_snapshot(stage: tuple[StratusConfig, Synth]) -> None:
    _, s = stage
    _, cluster = _one(s.json("root")["Resources"], "AWS::RDS::DBCluster")
    # Off at creation whatever the profile says: a failed first deploy's rollback can delete it.
    assert cluster["Properties"]["DeletionProtection"] is False
    # Deleted or replaced, it leaves a final snapshot.
    assert cluster["DeletionPolicy"] == "Snapshot" and cluster["UpdateReplacePolicy"] == "Snapshot"


def test_the_custom_resource_sets_the_profiles_protection_on_that_cluster(stage: tuple[StratusConfig, Synth]) -> None:
    config, s = stage
    root = s.json("root")["Resources"]
    cluster_id, cluster = _one(root, "AWS::RDS::DBCluster")
    _, protection = _one(root, PROTECTION)
    props = protection["Properties"]
    create, update = _call(props["Create"]), _call(props["Update"])
    assert create == update  # an Update (rollback or changed cluster) sets the same flag
    assert (create["service"], create["action"]) == ("RDS", "modifyDBCluster")
    assert cluster["Properties"]["DBClusterIdentifier"] == f"{config.prefix}-db"
    assert create["parameters"] == {"DBClusterIdentifier": f"<{cluster_id}>",
                                    "DeletionProtection": config.deletion_protection, "ApplyImmediately": True}
    assert config.deletion_protection is True
    # A fixed physical id (never replaced) and no Delete call: removing the resource or a stack
    # rollback of it never lowers the protection.
    assert create["physicalResourceId"] == {"id": f"<{cluster_id}>-deletion-protection"}
    assert "Delete" not in props
    # Its grant: ModifyDBCluster on that one cluster, nothing else.
    grants = [st for r in root.values() if r["Type"] == "AWS::IAM::Policy"
              for st in r["Properties"]["PolicyDocument"]["Statement"]
              if "rds:ModifyDBCluster" in as_list(st["Action"])]
    (grant,) = grants
    assert as_list(grant["Action"]) == ["rds:ModifyDBCluster"]
    (resource,) = as_list(grant["Resource"])
    assert cluster_id in json.dumps(resource) and "*" not in json.dumps(resource)


def test_protection_comes_after_every_other_resource_of_the_root_stack(stage: tuple[StratusConfig, Synth]) -> None:
    _, s = stage
    root = s.json("root")["Resources"]
    protection_id, protection = _one(root, PROTECTION)
    depends_on = set(as_list(protection.get("DependsOn", [])))
    conditional = {k for k, r in root.items() if "Condition" in r}
    assert conditional == {k for k in root if k.startswith("Edge5xxRate")}  # us-east-1 only
    assert set(root) - {protection_id} - conditional <= depends_on
    nested = {s.root.resolve(stack.nested_stack_resource.logical_id) for stack in s.root.domain_stacks.values()}
    assert nested and nested <= depends_on
    # Nothing waits for it (it is last), so nothing created later could fail after it.
    assert not any(protection_id in as_list(r.get("DependsOn", [])) for r in root.values())
    assert protection_id not in json.dumps({k: r for k, r in root.items() if k != protection_id})


def test_any_change_to_the_cluster_resource_sets_protection_again(synth: Synth, prod: Synth) -> None:
    # CloudFormation's DBCluster update handler sends the template's DeletionProtection (false)
    # with every ModifyDBCluster: the custom resource carries a digest of the cluster's
    # properties, so a changed cluster is an Update of the custom resource, which runs after it.
    digests = []
    for s in (synth, prod):
        root = s.json("root")["Resources"]
        cluster_id, cluster = _one(root, "AWS::RDS::DBCluster")
        _, protection = _one(root, PROTECTION)
        digest = protection["Properties"][CLUSTER_DIGEST_PROPERTY]
        assert digest == hashlib.sha256(json.dumps(cluster["Properties"], sort_keys=True).encode()).hexdigest()
        assert cluster_id in as_list(protection["DependsOn"])
        digests.append(digest)
    # The profiles' clusters differ (capacity): so do the digests.
    assert digests[0] != digests[1]


def test_prod_stack_refuses_deletion_itself(prod: Synth) -> None:
    # The window in which an existing stack's cluster is unprotected (between a cluster update
    # and the custom resource) is covered in prod by the stack's termination protection.
    assert prod.root.termination_protection is True
