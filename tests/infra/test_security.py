"""Data protection, least privilege and cdk-nag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from infra.nag import apply_checks
from infra.nag import logical_id as cfn_logical_id
from tests.infra.support import Synth, as_list, ref_logical_id, statements

# Service-wide wildcards never appear in an Allow; neither does any "*" action on the
# data services.
DATA_SERVICES = ("s3", "dynamodb", "sqs", "secretsmanager", "rds", "rds-db", "elasticache", "kms", "states",
                 "lambda", "sns", "logs", "bedrock", "es")


def test_buckets_encrypted_private_and_tls_only(synth: Synth) -> None:
    buckets = synth.templates["root"].find_resources("AWS::S3::Bucket")
    assert len(buckets) == 3  # uploads, payloads, access logs
    policies = synth.templates["root"].find_resources("AWS::S3::BucketPolicy")
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}
        (policy,) = [p for p in policies.values() if ref_logical_id(p["Properties"]["Bucket"]) == logical_id]
        assert any(s["Effect"] == "Deny"
                   and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
                   for s in statements(policy)), f"{logical_id} accepts plain HTTP"


def test_uploads_bucket_versioned_with_cors_for_presigned_uploads(synth: Synth) -> None:
    uploads = synth.root.data.uploads
    props = synth.templates["root"].find_resources("AWS::S3::Bucket")[cfn_logical_id(uploads)]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (cors,) = props["CorsConfiguration"]["CorsRules"]
    assert {"PUT", "POST"} <= set(cors["AllowedMethods"])
    assert "LoggingConfiguration" in props


def test_aurora_serverless_v2_postgres16_encrypted_behind_tls_proxy(synth: Synth) -> None:
    (cluster,) = synth.templates["root"].find_resources("AWS::RDS::DBCluster").values()
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-postgresql"
    assert props["EngineVersion"].startswith("16.")
    assert props["StorageEncrypted"] is True
    assert props["ServerlessV2ScalingConfiguration"]["MinCapacity"] >= 0.5
    (instance,) = synth.templates["root"].find_resources("AWS::RDS::DBInstance").values()
    assert instance["Properties"]["DBInstanceClass"] == "db.serverless"
    (proxy,) = synth.templates["root"].find_resources("AWS::RDS::DBProxy").values()
    assert proxy["Properties"]["RequireTLS"] is True
    secrets = {ref_logical_id(auth["SecretArn"]) for auth in proxy["Properties"]["Auth"]}
    assert cfn_logical_id(synth.root.data.app_secret) in secrets
    assert len(secrets) == 2, "owner and application role both log in through the proxy"


def test_cache_is_serverless_valkey_in_private_subnets_behind_a_security_group(synth: Synth) -> None:
    (cache,) = synth.templates["root"].find_resources("AWS::ElastiCache::ServerlessCache").values()
    props = cache["Properties"]
    assert props["Engine"] == "valkey"
    assert props["SecurityGroupIds"] and props["SubnetIds"]
    sg = ref_logical_id(props["SecurityGroupIds"][0])
    rules = synth.templates["root"].find_resources("AWS::EC2::SecurityGroupIngress").values()
    ingress = [r["Properties"] for r in rules if ref_logical_id(r["Properties"]["GroupId"]) == sg]
    assert ingress, "only named security groups reach the cache"
    assert all("CidrIp" not in rule for rule in ingress)
    assert {(rule["FromPort"], rule["ToPort"]) for rule in ingress} == {(6379, 6380)}


def test_no_wildcard_actions_in_any_policy(synth: Synth) -> None:
    offenders = []
    for stack, logical_id, policy in synth.resources("AWS::IAM::Policy"):
        for statement in statements(policy):
            if statement["Effect"] != "Allow":
                continue
            for action in as_list(statement["Action"]):
                service, _, name = action.partition(":")
                if action == "*" or name == "*" or (service in DATA_SERVICES and "*" in name):
                    offenders.append(f"{stack}/{logical_id}: {action}")
    assert not offenders


def test_wildcard_resources_only_for_actions_without_resource_level_permissions(synth: Synth) -> None:
    allowed_prefixes = ("ec2:", "xray:", "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLog",
                        "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                        "logs:PutResourcePolicy", "logs:UpdateLogDelivery")
    for stack, logical_id, policy in synth.resources("AWS::IAM::Policy"):
        for statement in statements(policy):
            if "*" in as_list(statement["Resource"]):
                for action in as_list(statement["Action"]):
                    assert action.startswith(allowed_prefixes), f"{stack}/{logical_id}: {action} on *"


def test_no_unacknowledged_cdk_nag_findings(synth: Synth) -> None:
    # Synthesis already raised on unacknowledged errors; the report must hold nothing from
    # cdk-nag at all (warnings included), and a fresh pack over the tree agrees.
    reports = synth.validation_report()["pluginReports"]
    assert "AwsSolutions" not in json.dumps(reports)
    result = AwsSolutionsChecks(verbose=True).validate_scope(synth.app)
    assert result.success, [v.rule_name for v in result.violations]


def test_cdk_nag_is_live(tmp_path: Path) -> None:
    # The control: the same checks registered the same way do fail a non-compliant app.
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Control")
    s3.CfnBucket(stack, "Bare")
    apply_checks(app)
    with pytest.raises(RuntimeError, match=r"ValidationFailed|Validation failed"):
        app.synth()


def test_every_acknowledgment_carries_a_reason(synth: Synth) -> None:
    seen = 0
    for template in synth.templates.values():
        for resource in template.to_json()["Resources"].values():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                if rule["id"].startswith("AwsSolutions-"):
                    assert len(rule["reason"]) >= 30, rule
                    seen += 1
    assert seen, "acknowledgments are written to the templates"
