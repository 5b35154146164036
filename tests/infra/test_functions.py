"""Every catalog entry becomes exactly one Lambda function, configured from its entry."""

from __future__ import annotations

import pytest

from functions import catalog
from infra.functions import env_name, web_adapter_layer_arn
from infra.packaging import START_SCRIPT
from layers.build import MAX_FUNCTION_LAYERS, attached_layers, function_layers
from shared.config import Settings, required_settings
from tests.infra.support import Synth, layer_asset, ref_logical_id

ENTRIES = {fn.name: fn for fn in catalog.FUNCTIONS}
# Variables for Powertools and the Lambda runtime, not for shared.config.
NOT_SETTINGS = {"powertools_service_name", "powertools_metrics_namespace", "parameters_secrets_extension_cache_enabled",
                "parameters_secrets_extension_cache_size", "parameters_secrets_extension_max_connections",
                "parameters_secrets_extension_log_level", "secrets_manager_ttl", "secrets_manager_timeout_millis",
                "ssm_parameter_store_ttl", "ssm_parameter_store_timeout_millis",
                # The Lambda Web Adapter and the start script of function URL functions.
                "aws_lambda_exec_wrapper", "aws_lwa_invoke_mode", "aws_lwa_port", "aws_lwa_readiness_check_path",
                "stratus_asgi_app"}


def test_every_catalog_entry_has_exactly_one_function(synth: Synth) -> None:
    deployed = synth.functions()
    assert sorted(deployed) == sorted(ENTRIES), "tagged functions differ from the catalog"
    duplicates = {name: len(found) for name, found in deployed.items() if len(found) != 1}
    assert not duplicates


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_function_matches_its_catalog_entry(synth: Synth, name: str) -> None:
    entry = ENTRIES[name]
    fn = synth.function(name)
    props = fn.props
    assert fn.stack == entry.domain, "functions live in their domain's nested stack"
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    # A function URL function's handler is the start script the Lambda Web Adapter runs.
    streaming = isinstance(entry.trigger, catalog.FunctionUrl)
    assert props["Handler"] == (START_SCRIPT if streaming else f"{entry.module}.handler")
    assert props["MemorySize"] == entry.memory_mb
    assert props["Timeout"] == entry.timeout_s
    assert props["TracingConfig"] == {"Mode": "Active"}
    # The catalog's layers (past Lambda's five, the last ones as one bundle) plus the
    # Parameters and Secrets extension (a region map lookup) and, for a function URL
    # function, the Lambda Web Adapter (by ARN).
    layers = props["Layers"]
    deployed = function_layers(entry)
    assert len(layers) == len(deployed) + attached_layers(entry) <= MAX_FUNCTION_LAYERS
    assert sum("Fn::FindInMap" in layer for layer in layers) == 1
    adapter = synth.root.resolve(web_adapter_layer_arn())
    assert sum(layer == adapter for layer in layers) == int(streaming)
    assert sorted(layer_asset(synth, fn.stack, layer) for layer in layers
                  if "Fn::FindInMap" not in layer and layer != adapter) == sorted(deployed)
    assert ("VpcConfig" in props) is entry.in_vpc


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_environment_follows_access(synth: Synth, name: str) -> None:
    entry = ENTRIES[name]
    env = synth.function(name).env
    assert env["STRATUS_RUNTIME"] == "lambda"
    assert env["POWERTOOLS_SERVICE_NAME"] == "stratus"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Stratus"
    assert env["LOG_LEVEL"] == "INFO"
    assert env["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] == "2773"
    resources = {access.resource for access in entry.access}
    database = "database" in resources
    admin = "database_admin" in resources
    assert ("DATABASE_HOST" in env) is database
    assert ("DATABASE_SECRET_ARN" in env) is (database or admin)
    assert ("DATABASE_ADMIN_SECRET_ARN" in env) is admin
    assert ("DATABASE_NAME" in env) is (database or admin)
    assert ("REDIS_URL" in env) is ("redis" in resources)
    if "redis" in resources:
        parts = env["REDIS_URL"]["Fn::Join"][1]
        assert parts[0] == "rediss://", "ElastiCache Serverless is TLS-only"
    for machine in catalog.STATE_MACHINES:
        assert (env_name(machine.name, "STATE_MACHINE_ARN") in env) is (f"state_machine:{machine.name}" in resources)
    for queue in catalog.QUEUES:
        assert (env_name(queue.name, "QUEUE_URL") in env) is (f"queue:{queue.name}" in resources)
    # PostgreSQL is the default vector store: the opensearch access only says so.
    assert env.get("VECTOR_STORE") == ("postgres" if "opensearch" in resources else None)
    assert "OPENSEARCH_URL" not in env
    assert ("ADMIN_TOKEN_SECRET_ARN" in env) is ("secret:admin-token" in resources)
    assert ("PROVIDER_KEYS_SECRET_ARN" in env) is ("secret:provider-keys" in resources)
    assert ("CREDENTIALS_KMS_KEY_ID" in env) is ("kms:credentials" in resources)
    # Every variable a catalog access sets is a shared.config setting the code reads.
    assert {key.lower() for key in env} - set(Settings.model_fields) <= NOT_SETTINGS


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_cdk_sets_every_setting_the_entry_requires(synth: Synth, name: str) -> None:
    # The same mapping the function checks at cold start (shared.config.required_settings).
    env = synth.function(name).env
    assert env["STRATUS_FUNCTION"] == name, "the cold-start check finds its catalog entry by this"
    assert "STRATUS_STAGE" not in env
    for required in required_settings(ENTRIES[name]):
        if required.when is None or env.get(required.when[0].upper()) == required.when[1]:
            assert env.get(required.variable), (name, required.variable, required.access)


def test_every_lambda_logs_to_a_group_with_retention(synth: Synth) -> None:
    # Every Lambda in the app, the CDK Provider framework's included.
    checked = 0
    for stack, logical_id, resource in synth.resources("AWS::Lambda::Function"):
        group = ref_logical_id(resource["Properties"].get("LoggingConfig", {}).get("LogGroup"))
        assert group, f"{stack}/{logical_id} has no log group of its own"
        groups = synth.templates[stack].find_resources("AWS::Logs::LogGroup")
        assert groups[group]["Properties"].get("RetentionInDays") == 30
        checked += 1
    assert checked >= len(ENTRIES)


def test_every_log_group_has_retention(synth: Synth) -> None:
    for stack, logical_id, resource in synth.resources("AWS::Logs::LogGroup"):
        assert resource["Properties"].get("RetentionInDays"), f"{stack}/{logical_id} keeps logs forever"


def test_every_function_has_an_error_alarm(synth: Synth) -> None:
    for name, (fn,) in synth.functions().items():
        alarms = synth.templates[fn.stack].find_resources("AWS::CloudWatch::Alarm")
        matching = [a for a in alarms.values()
                    if a["Properties"].get("MetricName") == "Errors"
                    and any(ref_logical_id(d["Value"]) == fn.logical_id
                            for d in a["Properties"].get("Dimensions", []))]
        assert len(matching) == 1, name
        assert matching[0]["Properties"]["AlarmActions"], "alarms notify the alarm topic"
