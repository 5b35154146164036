"""The vector store as a deployment choice (docs/adr/0023): PostgreSQL by default, where the
catalog's ``opensearch`` access only sets VECTOR_STORE; with ``-c vector_store=opensearch``
a managed OpenSearch domain in the VPC that exactly the functions with that access reach.
One more synthesis (module-scoped), with the flag."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdk_nag import AwsSolutionsChecks

from functions import catalog
from infra.config import StratusConfig
from infra.domain_stack import MAX_RESOURCES
from infra.nag import logical_id as cfn_logical_id
from infra.opensearch import ALL_HTTP_ACTIONS
from tests.infra.support import Synth, as_list, ref_logical_id, statements, synthesize

WITH_OPENSEARCH = {fn.name for fn in catalog.FUNCTIONS if any(a.resource == "opensearch" for a in fn.access)}
CONTEXT = {"vector_store": "opensearch", "stage": "search"}


@pytest.fixture(scope="module")
def opensearch(layer_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesize(tmp_path_factory.mktemp("cdk.out.opensearch"), CONTEXT)


def _domain(synth: Synth) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, r) for k, r in synth.json("root")["Resources"].items()
                if r["Type"] == "AWS::OpenSearchService::Domain"]
    return found


# --- PostgreSQL (the default) -----------------------------------------------------------------


def test_default_deployment_has_no_domain_and_says_postgres(synth: Synth) -> None:
    assert not synth.resources("AWS::OpenSearchService::Domain")
    assert WITH_OPENSEARCH
    for name, (fn,) in synth.functions().items():
        assert fn.env.get("VECTOR_STORE") == ("postgres" if name in WITH_OPENSEARCH else None), name
        assert "OPENSEARCH_URL" not in fn.env
    assert not [s for _, _, s in synth.role_statements() if any(a.startswith("es:") for a in as_list(s["Action"]))]


# --- OpenSearch ---------------------------------------------------------------------------------


def test_domain_is_private_encrypted_and_tls_only(opensearch: Synth) -> None:
    _, domain = _domain(opensearch)
    props = domain["Properties"]
    assert re.fullmatch(r"OpenSearch_\d+\.\d+", props["EngineVersion"])
    assert int(props["EngineVersion"].split("_")[1].split(".")[0]) >= 2
    assert props["EncryptionAtRestOptions"] == {"Enabled": True}
    assert props["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert props["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert props["DomainEndpointOptions"]["TLSSecurityPolicy"].startswith("Policy-Min-TLS-1-2")
    config = StratusConfig()
    cluster = props["ClusterConfig"]
    assert cluster["ZoneAwarenessEnabled"] is config.opensearch_zone_awareness
    assert cluster["InstanceCount"] == config.opensearch_data_nodes
    root = opensearch.json("root")["Resources"]
    private = {cfn_logical_id(s) for s in opensearch.root.network.vpc.private_subnets}
    subnets = {ref_logical_id(s) for s in props["VPCOptions"]["SubnetIds"]}
    assert subnets and subnets <= private
    assert len(subnets) == (2 if config.opensearch_zone_awareness else 1)
    (sg,) = [ref_logical_id(g) for g in props["VPCOptions"]["SecurityGroupIds"]]
    assert root[sg]["Properties"]["SecurityGroupEgress"][0]["CidrIp"] == "255.255.255.255/32", "no egress"
    ingress = [r["Properties"] for r in root.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"
               and ref_logical_id(r["Properties"]["GroupId"]) == sg]
    assert ingress == [{**ingress[0], "FromPort": 443, "ToPort": 443, "IpProtocol": "tcp"}]
    assert ref_logical_id(ingress[0]["SourceSecurityGroupId"]) == cfn_logical_id(
        opensearch.root.network.functions_sg)
    assert "CidrIp" not in ingress[0]


def test_domain_publishes_slow_and_error_logs_to_groups_with_retention(opensearch: Synth) -> None:
    _, domain = _domain(opensearch)
    root = opensearch.json("root")["Resources"]
    options = domain["Properties"]["LogPublishingOptions"]
    assert set(options) == {"SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS", "ES_APPLICATION_LOGS"}
    groups = set()
    for option in options.values():
        assert option["Enabled"] is True
        group = ref_logical_id(option["CloudWatchLogsLogGroupArn"])
        assert root[group]["Properties"]["RetentionInDays"] == 30
        groups.add(group)
    (policy,) = [r["Properties"] for r in root.values() if r["Type"] == "AWS::Logs::ResourcePolicy"]
    text = json.dumps(policy["PolicyDocument"])
    assert "es.amazonaws.com" in text and "aws:SourceAccount" in text
    assert all(group in text for group in groups)


def _resolve_output(synth: Synth, value: Any) -> tuple[str, str | None]:
    """A root ``GetAtt nested.Outputs.X`` → (domain stack, logical id the output references)."""
    nested_lid, attribute = value["Fn::GetAtt"]
    stack = next(name for name, s in synth.root.domain_stacks.items()
                 if s.nested_stack_resource is not None and cfn_logical_id(s.nested_stack_resource) == nested_lid)
    output = synth.json(stack)["Outputs"][attribute.removeprefix("Outputs.")]
    return stack, ref_logical_id(output["Value"])


def test_access_policy_names_exactly_the_roles_of_functions_with_opensearch_access(opensearch: Synth) -> None:
    domain_lid, _ = _domain(opensearch)
    (resource,) = [r for r in opensearch.json("root")["Resources"].values()
                   if r["Type"] == "Custom::OpenSearchAccessPolicy"]
    create = resource["Properties"]["Create"]
    assert resource["Properties"]["Update"] == create
    parts = create["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "<ref>" for p in parts)
    assert '"action":"updateDomainConfig"' in text and '"service":"OpenSearch"' in text
    document = json.loads(json.loads(text)["parameters"]["AccessPolicies"])
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ALL_HTTP_ACTIONS
    assert statement["Resource"] == "<ref>/*"
    owners = opensearch.role_owners()
    principals = {owners[_resolve_output(opensearch, p)] for p in parts
                  if isinstance(p, dict) and "Outputs." in str(p.get("Fn::GetAtt", ""))}
    assert principals == WITH_OPENSEARCH
    assert {"Fn::GetAtt": [domain_lid, "Arn"]} in parts, "the policy is the domain's paths"


def test_functions_with_opensearch_access_get_its_url_and_http_actions(opensearch: Synth) -> None:
    domain_lid, _ = _domain(opensearch)
    owners = opensearch.role_owners()
    holders: dict[str, set[str]] = {}
    for stack, role, statement in opensearch.role_statements():
        actions = {a for a in as_list(statement["Action"]) if a.startswith("es:ESHttp")}
        if not actions:
            continue
        holders.setdefault(owners.get((stack, role), f"{stack}/{role}"), set()).update(actions)
        (path,) = as_list(statement["Resource"])
        arn, suffix = path["Fn::Join"][1]
        assert suffix == "/*"
        assert opensearch.root_value(stack, arn) == {"Fn::GetAtt": [domain_lid, "Arn"]}
    assert set(holders) == WITH_OPENSEARCH
    assert all(actions == set(ALL_HTTP_ACTIONS) for actions in holders.values())
    for name, (fn,) in opensearch.functions().items():
        if name not in WITH_OPENSEARCH:
            assert not {"VECTOR_STORE", "OPENSEARCH_URL"} & set(fn.env), name
            continue
        assert fn.env["VECTOR_STORE"] == "opensearch"
        assert fn.env["OPENSEARCH_SIGV4_SERVICE"] == "es"
        scheme, endpoint = fn.env["OPENSEARCH_URL"]["Fn::Join"][1]
        assert scheme == "https://"
        assert opensearch.root_value(fn.stack, endpoint) == {"Fn::GetAtt": [domain_lid, "DomainEndpoint"]}
        assert "VpcConfig" in fn.props, "the domain is reachable from the VPC only"


def test_opensearch_deployment_is_nag_clean_and_under_the_resource_limit(opensearch: Synth) -> None:
    assert "AwsSolutions" not in json.dumps(opensearch.validation_report()["pluginReports"])
    result = AwsSolutionsChecks(verbose=True).validate_scope(opensearch.app)
    assert result.success, [v.rule_name for v in result.violations]
    counts = {name: len(t.to_json()["Resources"]) for name, t in opensearch.templates.items()}
    assert all(count < MAX_RESOURCES for count in counts.values()), counts
    # Every Lambda of the app, CDK's custom-resource providers included, logs with retention.
    for stack, logical_id, resource in opensearch.resources("AWS::Lambda::Function"):
        group = ref_logical_id(resource["Properties"].get("LoggingConfig", {}).get("LogGroup"))
        assert group, f"{stack}/{logical_id} has no log group of its own"
        assert opensearch.json(stack)["Resources"][group]["Properties"]["RetentionInDays"] == 30
    for template in opensearch.templates.values():
        for resource in template.to_json()["Resources"].values():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                if rule["id"].startswith("AwsSolutions-"):
                    assert len(rule["reason"]) >= 30, rule


def test_custom_resource_may_only_update_this_domain(opensearch: Synth) -> None:
    domain_lid, _ = _domain(opensearch)
    found = [s for _, _, policy in opensearch.resources("AWS::IAM::Policy") for s in statements(policy)
             if "es:UpdateDomainConfig" in as_list(s["Action"])]
    (statement,) = found
    assert as_list(statement["Action"]) == ["es:UpdateDomainConfig"]
    assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [domain_lid, "Arn"]}]


def test_config_reads_and_checks_the_vector_store_choice() -> None:
    assert StratusConfig().vector_store == "postgres"
    with pytest.raises(ValueError, match="vector_store"):
        StratusConfig(vector_store="pinecone")
    with pytest.raises(ValueError, match="even"):
        StratusConfig(vector_store="opensearch", opensearch_data_nodes=3)
    assert StratusConfig(vector_store="opensearch", opensearch_data_nodes=1, opensearch_zone_awareness=False).opensearch
