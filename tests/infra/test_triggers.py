"""Each catalog trigger is wired to its function: routes, authorizer, schedules, state
machine tasks and the deploy-time custom resource."""

from __future__ import annotations

import json

import pytest

from functions import catalog
from infra.functions import construct_id
from infra.nag import logical_id as cfn_logical_id
from infra.packaging import migrations_hash
from infra.state_machines import substitution_key
from tests.infra.support import Resource, Synth, as_list, ref_logical_id, statements

HTTP = [fn for fn in catalog.FUNCTIONS if isinstance(fn.trigger, catalog.Http)]


def _routes(synth: Synth, stack: str) -> dict[str, dict]:
    return {r["Properties"]["RouteKey"]: r["Properties"]
            for r in synth.templates[stack].find_resources("AWS::ApiGatewayV2::Route").values()}


def _integration_target(synth: Synth, stack: str, route: dict) -> str | None:
    integration_id = ref_logical_id(route["Target"]["Fn::Join"][1][1])
    assert integration_id is not None
    integration = synth.templates[stack].find_resources("AWS::ApiGatewayV2::Integration")[integration_id]
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    return ref_logical_id(integration["Properties"]["IntegrationUri"])


def _authorizer(synth: Synth) -> tuple[str, str, Resource]:
    (found,) = synth.resources("AWS::ApiGatewayV2::Authorizer")
    return found


@pytest.mark.parametrize("fn", HTTP, ids=lambda fn: fn.name)
def test_http_route_exists_with_authorizer_iff_auth(synth: Synth, fn: catalog.Function) -> None:
    assert isinstance(fn.trigger, catalog.Http)
    deployed = synth.function(fn.name)
    routes = _routes(synth, deployed.stack)
    route = routes[fn.trigger.route_key]
    assert _integration_target(synth, deployed.stack, route) == deployed.logical_id
    if fn.trigger.auth:
        assert route["AuthorizationType"] == "CUSTOM"
        assert route["AuthorizerId"], "authenticated routes carry the authorizer"
    else:
        assert route["AuthorizationType"] == "NONE"
        assert "AuthorizerId" not in route


def test_no_route_is_defined_twice_across_stacks(synth: Synth) -> None:
    keys = [r["Properties"]["RouteKey"] for _, _, r in synth.resources("AWS::ApiGatewayV2::Route")]
    assert len(keys) == len(set(keys))
    expected = {fn.trigger.route_key for fn in HTTP if isinstance(fn.trigger, catalog.Http)} | {"$default"}
    assert set(keys) == expected


def test_default_route_answers_unknown_paths(synth: Synth) -> None:
    (entry,) = [fn for fn in catalog.FUNCTIONS if isinstance(fn.trigger, catalog.DefaultRoute)]
    deployed = synth.function(entry.name)
    route = _routes(synth, deployed.stack)["$default"]
    assert _integration_target(synth, deployed.stack, route) == deployed.logical_id
    assert route["AuthorizationType"] == "NONE"


def test_authorizer_is_the_catalog_request_authorizer(synth: Synth) -> None:
    (entry,) = [fn for fn in catalog.FUNCTIONS if isinstance(fn.trigger, catalog.Authorizer)]
    deployed = synth.function(entry.name)
    stack, _, authorizer = _authorizer(synth)
    props = authorizer["Properties"]
    assert stack == entry.domain
    assert props["AuthorizerType"] == "REQUEST"
    assert props["AuthorizerPayloadFormatVersion"] == "2.0"
    assert props["EnableSimpleResponses"] is True
    # The token, and the edge's origin header (docs/adr/0047-concurrency-budget-and-side-doors.md).
    assert props["IdentitySource"] == ["$request.header.Authorization", "$request.header.x-stratus-origin-verify"]
    assert props["AuthorizerResultTtlInSeconds"] == 300
    uri_parts = props["AuthorizerUri"]["Fn::Join"][1]
    assert any(ref_logical_id(part) == deployed.logical_id for part in uri_parts)
    # API Gateway may invoke it, scoped to this authorizer.
    permissions = synth.templates[stack].find_resources("AWS::Lambda::Permission")
    assert any(ref_logical_id(p["Properties"]["FunctionName"]) == deployed.logical_id
               and "/authorizers/" in json.dumps(p["Properties"]["SourceArn"])
               for p in permissions.values())


@pytest.mark.parametrize("fn", [fn for fn in catalog.FUNCTIONS if isinstance(fn.trigger, catalog.Schedule)],
                         ids=lambda fn: fn.name)
def test_schedule_rule_targets_function(synth: Synth, fn: catalog.Function) -> None:
    assert isinstance(fn.trigger, catalog.Schedule)
    deployed = synth.function(fn.name)
    rules = synth.templates[deployed.stack].find_resources("AWS::Events::Rule")
    matching = [r["Properties"] for r in rules.values()
                if any(ref_logical_id(t["Arn"]) == deployed.logical_id for t in r["Properties"]["Targets"])]
    assert len(matching) == 1
    assert matching[0]["ScheduleExpression"] == fn.trigger.expression
    assert matching[0]["State"] == "ENABLED"


@pytest.mark.parametrize("spec", catalog.STATE_MACHINES, ids=lambda spec: spec.name)
def test_state_machine_references_its_task_functions(synth: Synth, spec: catalog.StateMachineSpec) -> None:
    machines = synth.templates[spec.domain].find_resources("AWS::StepFunctions::StateMachine")
    prefix = construct_id(spec.name) + "StateMachine"
    (props,) = [m["Properties"] for logical_id, m in machines.items() if logical_id.startswith(prefix)]
    assert props["StateMachineType"] == spec.type == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    tasks = [fn for fn in catalog.FUNCTIONS
             if isinstance(fn.trigger, catalog.StepFunctionsTask) and fn.trigger.state_machine == spec.name]
    assert tasks
    role_id = ref_logical_id(props["RoleArn"])
    policies = [p for p in synth.templates[spec.domain].find_resources("AWS::IAM::Policy").values()
                if any(ref_logical_id(r) == role_id for r in p["Properties"]["Roles"])]
    invokable = {ref_logical_id(r) for p in policies for s in statements(p)
                 if "lambda:InvokeFunction" in as_list(s["Action"]) for r in as_list(s["Resource"])}
    for task in tasks:
        deployed = synth.function(task.name)
        key = substitution_key(task.name)
        assert "${" + key + "}" in props["DefinitionString"]
        assert ref_logical_id(props["DefinitionSubstitutions"][key]) == deployed.logical_id
        assert deployed.logical_id in invokable, "the state machine may invoke its task"
    assert "${fn:" not in props["DefinitionString"], "no placeholder left unfilled"


def test_deploy_trigger_is_a_custom_resource_keyed_on_the_migrations(synth: Synth) -> None:
    (entry,) = [fn for fn in catalog.FUNCTIONS if isinstance(fn.trigger, catalog.Deploy)]
    deployed = synth.function(entry.name)
    template = synth.templates[deployed.stack]
    resources = template.to_json()["Resources"]
    custom = [r for r in resources.values() if r["Type"].startswith("Custom::")]
    assert len(custom) == 1
    props = custom[0]["Properties"]
    assert props["MigrationsHash"] == migrations_hash()
    provider = resources[ref_logical_id(props["ServiceToken"])]
    target = provider["Properties"]["Environment"]["Variables"]["USER_ON_EVENT_FUNCTION_ARN"]
    assert ref_logical_id(target) == deployed.logical_id
    # Migrations wait for the database: the domain stack depends on the cluster.
    root = synth.json("root")["Resources"]
    (cluster,) = [k for k, r in root.items() if r["Type"] == "AWS::RDS::DBCluster"]
    nested = synth.root.domain_stacks[entry.domain].nested_stack_resource
    assert nested is not None
    assert cluster in root[cfn_logical_id(nested)].get("DependsOn", [])
