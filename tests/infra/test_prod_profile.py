"""The stage profiles of cdk.json (dev and prod) on the synthesized templates, and what every
stage has: alarms derived from the catalog, a dashboard, scoped grants, dead-letter queues on
EventBridge targets, state machine timeouts, the migration custom resource that can roll back
and the deploy order around it (docs/adr/0048-prod-profile-and-safe-migrations.md)."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions import catalog
from infra.app import cdk_json_context
from infra.config import StratusConfig
from infra.migrations import deploy_domains
from infra.network import needs_internet
from infra.packaging import migrations_hash
from infra.state_machines import DEFAULT_TIMEOUT_S
from shared.knowledge.storage import document_key
from tests.infra.support import Synth, as_list, ref_logical_id, synthesize

PROD_EXTRAS = {"alarm_email": "ops@example.com", "upload_cors_origins": "https://app.example.com"}


@pytest.fixture(scope="module")
def prod(layer_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    # Only what an operator writes into cdk.json's prod profile once (its placeholders are
    # empty in the repository); everything else is the profile as shipped.
    yield synthesize(tmp_path_factory.mktemp("cdk.out.prod"), {"stage": "prod", **PROD_EXTRAS})


# --- Profiles ---------------------------------------------------------------------------


def test_cdk_json_holds_a_dev_and_a_prod_profile() -> None:
    context = cdk_json_context()
    dev = StratusConfig.from_values(context)
    assert dev.stage == "dev" and not dev.production and dev.nat_gateways == 1 and dev.aurora_readers == 0
    prod = StratusConfig.from_values({**context, "stage": "prod", **PROD_EXTRAS})
    assert prod.production and prod.nat_gateways == 2 and prod.aurora_readers >= 1
    assert prod.termination_protection and prod.retain_secrets and prod.deletion_protection
    assert prod.upload_cors_origins == ("https://app.example.com",) and prod.vector_store == "postgres"
    # A personal stage takes dev's profile: nothing to remember on the command line.
    assert StratusConfig.from_values({**context, "stage": "alice"}).nat_gateways == 1


def test_prod_without_an_alarm_subscriber_fails_with_a_clear_message() -> None:
    context = {**cdk_json_context(), "stage": "prod"}
    with pytest.raises(ValueError, match="production stage") as err:
        StratusConfig.from_values(context)
    assert "alarm_email" in str(err.value) and "upload_cors_origins" in str(err.value)
    with pytest.raises(ValueError, match="alarm_email"):
        StratusConfig.from_values({**context, "upload_cors_origins": "https://app.example.com"})
    with pytest.raises(ValueError, match="not '\\*'"):
        StratusConfig.from_values({**context, "alarm_email": "ops@example.com", "upload_cors_origins": "*"})


def test_profiles_reject_unknown_and_bad_settings() -> None:
    with pytest.raises(ValueError, match="nat_gatway"):
        StratusConfig.from_values({"stages": {"dev": {"nat_gatway": 2}}})
    with pytest.raises(ValueError, match="nat_gateways"):
        StratusConfig(nat_gateways=3)
    with pytest.raises(ValueError, match="e-mail"):
        StratusConfig(alarm_email="not-an-address")
    # Command-line values arrive as strings.
    config = StratusConfig.from_values({"stage": "dev", "nat_gateways": "2", "retain_secrets": "true",
                                        "upload_cors_origins": "https://a.example, https://b.example"})
    assert config.nat_gateways == 2 and config.retain_secrets
    assert config.upload_cors_origins == ("https://a.example", "https://b.example")


def _resources(synth: Synth, stack: str, resource_type: str) -> dict[str, Any]:
    return {k: v for k, v in synth.json(stack)["Resources"].items() if v["Type"] == resource_type}


def test_prod_has_a_nat_per_az_a_reader_and_protection(prod: Synth, synth: Synth) -> None:
    assert len(_resources(prod, "root", "AWS::EC2::NatGateway")) == 2
    assert len(_resources(synth, "root", "AWS::EC2::NatGateway")) == 1
    assert len(_resources(prod, "root", "AWS::RDS::DBInstance")) == 2  # writer + reader
    assert len(_resources(synth, "root", "AWS::RDS::DBInstance")) == 1
    assert prod.root.termination_protection is True
    assert synth.root.termination_protection is False


def test_prod_retains_its_secrets(prod: Synth, synth: Synth) -> None:
    prod_secrets = _resources(prod, "root", "AWS::SecretsManager::Secret")
    # owner, app, admin token, provider keys, the edge's origin secret, the cache users' passwords
    assert len(prod_secrets) == 7
    assert {s["DeletionPolicy"] for s in prod_secrets.values()} == {"Retain"}
    assert {s.get("DeletionPolicy", "Delete") for s in _resources(synth, "root", "AWS::SecretsManager::Secret")
            .values()} == {"Delete"}


def test_prod_pins_cors_origins_and_subscribes_the_alarm_address(prod: Synth, synth: Synth) -> None:
    def origins(s: Synth) -> list[str]:
        (uploads,) = [b for k, b in _resources(s, "root", "AWS::S3::Bucket").items() if k.startswith("DataUploads")]
        return [o for rule in uploads["Properties"]["CorsConfiguration"]["CorsRules"] for o in rule["AllowedOrigins"]]

    assert origins(prod) == ["https://app.example.com"]
    assert origins(synth) == ["*"]
    subscriptions = _resources(prod, "root", "AWS::SNS::Subscription")
    assert [(s["Properties"]["Protocol"], s["Properties"]["Endpoint"]) for s in subscriptions.values()] == [
        ("email", "ops@example.com")]


# --- Alarms and the dashboard -------------------------------------------------------------


def _alarms(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    return [(stack, a["Properties"]) for stack, _, a in synth.resources("AWS::CloudWatch::Alarm")]


def _dimension_ref(props: dict[str, Any], name: str) -> str | None:
    for dimension in props.get("Dimensions", []):
        if dimension["Name"] == name:
            return ref_logical_id(dimension["Value"])
    return None


def test_every_function_has_error_throttle_and_timeout_alarms(synth: Synth) -> None:
    config = StratusConfig.from_values(cdk_json_context())
    alarms = _alarms(synth)
    for fn in catalog.FUNCTIONS:
        deployed = synth.function(fn.name)
        mine = {props["MetricName"]: props for stack, props in alarms
                if stack == deployed.stack and _dimension_ref(props, "FunctionName") == deployed.logical_id}
        assert {"Errors", "Throttles", "Duration"} <= set(mine), fn.name
        assert mine["Errors"]["Threshold"] == config.function_errors_alarm
        assert mine["Duration"]["ExtendedStatistic"] == "p99"
        assert mine["Duration"]["Threshold"] == pytest.approx(fn.timeout_s * 1000 * config.duration_alarm_percent / 100)


def test_prod_error_alarms_take_the_profiles_threshold(prod: Synth) -> None:
    thresholds = {props["Threshold"] for _, props in _alarms(prod)
                  if props.get("MetricName") == "Errors" and props.get("Namespace") == "AWS/Lambda"}
    assert thresholds == {5}


def test_every_queue_and_state_machine_has_its_alarms(synth: Synth) -> None:
    alarms = _alarms(synth)
    ages = [props for _, props in alarms if props.get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert len(ages) == len(catalog.QUEUES)
    failed = [props for _, props in alarms if props.get("MetricName") == "ExecutionsFailed"]
    assert len(failed) == len(catalog.STATE_MACHINES)


def test_data_edge_and_cache_alarms(synth: Synth) -> None:
    root = synth.json("root")["Resources"]
    by_metric = {a["Properties"]["MetricName"]: a for a in root.values() if a["Type"] == "AWS::CloudWatch::Alarm"}
    for metric in ("DatabaseConnectionsBorrowLatency", "AvailabilityPercentage", "BytesUsedForCache",
                   "ElastiCacheProcessingUnits", "5xxErrorRate", "DatabaseConnectionsCurrentlySessionPinned",
                   "ACUUtilization"):
        assert metric in by_metric, metric
    # CloudFront's metrics live in us-east-1 only: the alarm exists there.
    assert by_metric["5xxErrorRate"]["Condition"] == "InUsEast1"
    cache_dims = {d["Name"]: d["Value"] for d in by_metric["BytesUsedForCache"]["Properties"]["Dimensions"]}
    assert cache_dims == {"clusterId": "stratus-dev-cache"}


def test_valkey_alarms_and_widgets_use_the_serverless_cache_dimension(synth: Synth, prod: Synth) -> None:
    # ElastiCache Serverless publishes AWS/ElastiCache metrics with one dimension, clusterId = the
    # cache's name (lowercase: the stage pattern allows no capitals); CacheClusterId/NodeId are
    # node-based clusters' and would match nothing, leaving the alarms silent forever.
    for s in (synth, prod):
        root = s.json("root")["Resources"]
        (cache,) = [r for r in root.values() if r["Type"] == "AWS::ElastiCache::ServerlessCache"]
        name = cache["Properties"]["ServerlessCacheName"]
        assert name == name.lower()
        alarms = [r["Properties"] for r in root.values() if r["Type"] == "AWS::CloudWatch::Alarm"
                  and r["Properties"].get("Namespace") == "AWS/ElastiCache"]
        assert {a["MetricName"] for a in alarms} == {"BytesUsedForCache", "ElastiCacheProcessingUnits"}
        for props in alarms:
            assert props["Dimensions"] == [{"Name": "clusterId", "Value": name}], props["MetricName"]
        (board,) = [r for r in root.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
        body = json.dumps(board["Properties"]["DashboardBody"])
        assert body.count('\\"clusterId\\",\\"' + name) == 2 and "CacheClusterId" not in body


def test_every_alarm_notifies_the_topic(synth: Synth) -> None:
    for stack, props in _alarms(synth):
        actions = props.get("AlarmActions", [])
        assert len(actions) == 1, (stack, props.get("AlarmDescription"))


def test_a_dashboard_covers_the_stage(synth: Synth) -> None:
    (board,) = _resources(synth, "root", "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(board["Properties"]["DashboardBody"])
    for needle in ("AWS/Lambda,FunctionName", "ApproximateAgeOfOldestMessage", "ExecutionsFailed",
                   "DatabaseConnectionsBorrowLatency", "ElastiCacheProcessingUnits", "5xxErrorRate", "Stratus-dev"):
        assert needle in body, needle
    # Every state machine by its ARN (failed and timed out): most have generated names.
    assert body.count("StateMachineArn") == 2 * len(catalog.STATE_MACHINES)


def test_the_alarm_key_admits_cloudwatch_of_this_account_only(synth: Synth) -> None:
    keys = _resources(synth, "root", "AWS::KMS::Key")
    (alarm_key,) = [k for name, k in keys.items() if name.startswith("AlarmsKey")]
    (grant,) = [s for s in alarm_key["Properties"]["KeyPolicy"]["Statement"]
                if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


# --- Least privilege ---------------------------------------------------------------------


def test_upload_grants_are_per_function_and_under_tenants(synth: Synth) -> None:
    owners = synth.role_owners()
    grants: dict[str, set[str]] = {}
    listers: set[str] = set()
    for stack, role, statement in synth.role_statements():
        for resource in as_list(statement.get("Resource", [])):
            text = json.dumps(resource)  # <UploadsBucketArn>/tenants/* is a Fn::Join in a nested stack
            if "UploadsBucketArn" in text and (stack, role) in owners:
                if any(a.startswith("s3:") and a != "s3:ListBucket" for a in as_list(statement["Action"])):
                    assert text.endswith('"/tenants/*"]]}'), (owners[(stack, role)], text)
                    grants.setdefault(owners[(stack, role)], set()).update(as_list(statement["Action"]))
                else:
                    assert statement["Condition"] == {"StringLike": {"s3:prefix": ["tenants/*"]}}
                    listers.add(owners[(stack, role)])
    assert grants["documents-create"] == {"s3:PutObject", "s3:AbortMultipartUpload"}
    assert grants["documents-delete"] == {"s3:DeleteObject"}
    assert grants["documents-ingest"] == {"s3:GetObject"}
    assert grants["knowledge-bases-purge"] == {"s3:GetObject", "s3:DeleteObject"}
    # The sweeper asks whether an upload landed by listing under its key (S3DocumentFiles.exists):
    # HeadObject of a missing key would be a 403 with a prefix-conditioned ListBucket.
    assert {"documents-sweep", "knowledge-bases-purge"} <= listers
    assert fnmatch.fnmatchcase(document_key(uuid.uuid4(), uuid.uuid4(), uuid.uuid4()), "tenants/*")


def test_only_provider_calling_functions_reach_the_internet(synth: Synth) -> None:
    root = synth.json("root")["Resources"]
    groups = {k: v for k, v in root.items() if v["Type"] == "AWS::EC2::SecurityGroup"}
    (functions_sg,) = [k for k in groups if k.startswith("NetworkFunctionsSg")]
    (internet_sg,) = [k for k in groups if k.startswith("NetworkInternetEgressSg")]
    egress = groups[functions_sg]["Properties"].get("SecurityGroupEgress", [])
    assert not any(rule.get("CidrIp") == "0.0.0.0/0" for rule in egress)
    assert [rule["CidrIp"] for rule in groups[internet_sg]["Properties"]["SecurityGroupEgress"]] == ["0.0.0.0/0"]
    attached = 0
    for fn in catalog.FUNCTIONS:
        if not fn.in_vpc:
            continue
        deployed = synth.function(fn.name)
        sgs = {ref_logical_id(synth.root_value(deployed.stack, sg))
               for sg in deployed.props["VpcConfig"]["SecurityGroupIds"]}
        assert (internet_sg in sgs) == needs_internet(fn), fn.name
        attached += internet_sg in sgs
    assert 0 < attached < sum(fn.in_vpc for fn in catalog.FUNCTIONS)


def test_endpoints_are_fenced_to_the_account(synth: Synth) -> None:
    endpoints = _resources(synth, "root", "AWS::EC2::VPCEndpoint")
    assert endpoints
    for name, endpoint in endpoints.items():
        (statement,) = endpoint["Properties"]["PolicyDocument"]["Statement"]
        conditions = statement["Condition"]["StringEquals"]
        assert conditions["aws:PrincipalAccount"] == {"Ref": "AWS::AccountId"}, name
        if "Bedrock" not in name and not name.startswith("NetworkVpcS3"):
            assert conditions["aws:ResourceAccount"] == {"Ref": "AWS::AccountId"}, name


def test_eventbridge_targets_have_dead_letter_queues(synth: Synth) -> None:
    rules = synth.resources("AWS::Events::Rule")
    assert rules
    for stack, name, rule in rules:
        for target in rule["Properties"]["Targets"]:
            assert ref_logical_id(target["DeadLetterConfig"]["Arn"]), (stack, name)
            assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2


def test_state_machines_have_execution_timeouts(synth: Synth) -> None:
    found = []
    for stack, _, machine in synth.resources("AWS::StepFunctions::StateMachine"):
        if stack in deploy_domains():
            continue  # the migration's waiter: aws-cdk-lib's, bounded by the provider's total timeout
        found.append(json.loads(machine["Properties"]["DefinitionString"])["TimeoutSeconds"])
    expected = sorted(spec.timeout_s or DEFAULT_TIMEOUT_S[spec.type] for spec in catalog.STATE_MACHINES)
    assert sorted(found) == expected
    assert max(found) == 365 * 24 * 3600  # workflow runs: as long as a pause may last


# --- Migrations --------------------------------------------------------------------------


def test_the_migration_resource_carries_the_hash_and_the_secret_arns(synth: Synth) -> None:
    (domain,) = deploy_domains()
    resources = synth.json(domain)["Resources"]
    (migration,) = [r for r in resources.values() if r["Type"].startswith("Custom::StratusDbMigrate")]
    props = migration["Properties"]
    assert props["MigrationsHash"] == migrations_hash()
    for key in ("AdminSecretArn", "AppSecretArn", "AdminTokenSecretArn"):
        assert ref_logical_id(synth.root_value(domain, props[key])), key
    # Long migrations: the provider's waiter polls isComplete (a Step Functions state machine).
    assert any(r["Type"] == "AWS::StepFunctions::StateMachine" for r in resources.values())
    (function,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"
                   and {"Key": "stratus:function", "Value": "db-migrate"} in r["Properties"].get("Tags", [])]
    assert function["Properties"]["Timeout"] == 900


def test_every_domain_stack_waits_for_the_migration(synth: Synth) -> None:
    root = synth.json("root")["Resources"]
    schema_ids = {synth.root.resolve(synth.root.domain_stacks[d].nested_stack_resource.logical_id)
                  for d in deploy_domains()}
    for domain, stack in synth.root.domain_stacks.items():
        if domain in deploy_domains():
            continue
        logical_id = synth.root.resolve(stack.nested_stack_resource.logical_id)
        assert schema_ids <= set(as_list(root[logical_id].get("DependsOn", []))), domain


def test_the_cluster_is_protected_only_once_the_stack_exists(synth: Synth, prod: Synth) -> None:
    for s in (synth, prod):
        root = s.json("root")["Resources"]
        (cluster,) = [r for r in root.values() if r["Type"] == "AWS::RDS::DBCluster"]
        assert cluster["Properties"]["DeletionProtection"] is False
        (protect,) = [(k, r) for k, r in root.items() if r["Type"] == "Custom::StratusClusterDeletionProtection"]
        call = json.dumps(protect[1]["Properties"]["Create"])
        assert "modifyDBCluster" in call and '\\"DeletionProtection\\":true' in call
        nested = {s.root.resolve(stack.nested_stack_resource.logical_id) for stack in s.root.domain_stacks.values()}
        assert nested <= set(protect[1]["DependsOn"])


def test_the_schema_domain_holds_only_the_migration() -> None:
    (domain,) = deploy_domains()
    assert [fn.name for fn in catalog.FUNCTIONS if fn.domain == domain] == ["db-migrate"]


# --- Deploying -----------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def test_deploy_uses_the_cdk_cli_pinned_by_the_lockfile() -> None:
    lock = json.loads((REPO / "infra/cdk-cli/package-lock.json").read_text())
    cli = lock["packages"]["node_modules/aws-cdk"]
    assert cli["version"].startswith("2.1148.") and cli["integrity"].startswith("sha512-")
    package = json.loads((REPO / "infra/cdk-cli/package.json").read_text())
    assert package["dependencies"]["aws-cdk"] == cli["version"]  # exact, no range
    makefile = (REPO / "Makefile").read_text()
    deploy = makefile.split("\ndeploy:", 1)[1].split("\n\n", 1)[0]
    assert "npx" not in makefile and "$(CDK) deploy --all $(CDK_APP) --require-approval $(REQUIRE_APPROVAL)" in deploy
    assert "npm ci --prefix $(CDK_CLI)" in makefile
    assert "REQUIRE_APPROVAL ?= $(if $(filter prod,$(STAGE)),any-change,broadening)" in makefile


def test_the_bootstrap_execution_policy_is_scoped() -> None:
    policy = json.loads((REPO / "infra/bootstrap/execution-policy.json").read_text())
    allowed = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    actions = {a for s in allowed for a in as_list(s["Action"])}
    assert "*" not in actions and "iam:*" not in actions
    (iam_statement,) = [s for s in allowed if any(a.startswith("iam:") for a in as_list(s["Action"]))]
    assert all(":role/Stratus-*" in r or "aws-service-role" in r for r in iam_statement["Resource"])


def test_bootstrap_needs_neither_the_layers_nor_a_synth() -> None:
    # With an explicit aws://<account>/<region> the CDK CLI bootstraps that environment without
    # running the app, so nothing the app needs (the layers, a synth) may be a prerequisite.
    result = subprocess.run(
        ["make", "-n", "bootstrap", "ACCOUNT=123456789012", "REGION=eu-west-1",
         "POLICY=arn:aws:iam::123456789012:policy/StratusCdkExecution"],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=60)
    assert "layers.build" not in result.stdout
    assert not any(line.rstrip().endswith("app.py") for line in result.stdout.splitlines())  # no `make synth`
    (command,) = [line for line in result.stdout.splitlines() if " bootstrap aws://" in line]
    assert command.startswith("infra/cdk-cli/node_modules/.bin/cdk bootstrap aws://123456789012/eu-west-1 ")
    # Whereas a deploy does build them (its synth bundles them).
    deploy = subprocess.run(["make", "-n", "deploy"], cwd=REPO, capture_output=True, text=True, check=True, timeout=60)
    assert "layers.build" in deploy.stdout
