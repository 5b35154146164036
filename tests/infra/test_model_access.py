"""What the model functions reach: the credentials KMS key, Bedrock and the provider-keys
secret, each granted to exactly the functions whose catalog entry asks for it
(docs/adr/0020-model-access-infrastructure.md). Catalog-driven: a new function with one of
these accesses is covered without touching this file."""

from __future__ import annotations

from typing import Any

import pytest

from functions import catalog
from infra.data import CREDENTIALS_CONTEXT_KEY, KEY_USER_TAG_VALUE, PROVIDER_KEYS_INITIAL, key_user_tag
from infra.functions import env_name
from infra.nag import logical_id as cfn_logical_id
from tests.infra.support import Synth, as_list, ref_logical_id, render

CRYPTO = {"kms:Encrypt", "kms:Decrypt"}
BEDROCK_INVOKE = {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
BEDROCK_DIRECT = {
    "arn:<AWS::Partition>:bedrock:<AWS::Region>::foundation-model/*",
    "arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/*",
    "arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:application-inference-profile/*",
}
BEDROCK_PROFILES = {arn for arn in BEDROCK_DIRECT if "inference-profile" in arn}
BEDROCK_ROUTED = "arn:<AWS::Partition>:bedrock:*::foundation-model/*"


def _with(resource: str) -> set[str]:
    return {fn.name for fn in catalog.FUNCTIONS if any(a.resource == resource for a in fn.access)}


def _owner(synth: Synth, stack: str, role: str) -> str:
    """The catalog function of a role, or ``stack/role`` for any other role (Provider
    framework, state machine, ...) so an unexpected grant names its holder."""
    return synth.role_owners().get((stack, role), f"{stack}/{role}")


def _statements_with(synth: Synth, prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(stack, role, s) for stack, role, s in synth.role_statements()
            if s["Effect"] == "Allow" and any(a.startswith(prefix) for a in as_list(s["Action"]))]


# --- The credentials key ------------------------------------------------------------------


def _key(synth: Synth) -> tuple[str, dict[str, Any]]:
    key_id = cfn_logical_id(synth.root.data.credentials_key)
    return key_id, synth.json("root")["Resources"][key_id]


def test_credentials_key_rotates_is_retained_and_names_no_wildcard_action(synth: Synth) -> None:
    _, key = _key(synth)
    props = key["Properties"]
    assert props["EnableKeyRotation"] is True
    assert props.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
    assert key["DeletionPolicy"] == "Retain", "stored tenant credentials are ciphertext under this key"
    policy = props["KeyPolicy"]["Statement"]
    actions = [a for s in policy for a in as_list(s["Action"])]
    assert not [a for a in actions if "*" in a], "the key policy lists actions, no kms:* or kms:Get*"
    crypto = [s for s in policy if CRYPTO & set(as_list(s["Action"]))]
    (use,) = crypto
    assert set(as_list(use["Action"])) == CRYPTO, "no ReEncrypt, GenerateDataKey or CreateGrant"
    conditions = use["Condition"]
    assert conditions["StringEquals"] == {f"aws:PrincipalTag/{key_user_tag('credentials')}": KEY_USER_TAG_VALUE}
    assert as_list(conditions["ForAnyValue:StringEquals"]["kms:EncryptionContextKeys"]) == [CREDENTIALS_CONTEXT_KEY]
    # Nothing else in the policy may use the key for data.
    data_actions = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt", "kms:GenerateDataKey", "kms:CreateGrant")
    for statement in policy:
        if statement is not use:
            assert not [a for a in as_list(statement["Action"]) if a.startswith(data_actions)], statement


def test_only_functions_with_kms_access_can_use_the_credentials_key(synth: Synth) -> None:
    key_id, _ = _key(synth)
    key_arn = {"Fn::GetAtt": [key_id, "Arn"]}
    holders = set()
    for stack, role, statement in _statements_with(synth, "kms:"):
        holders.add(_owner(synth, stack, role))
        assert set(as_list(statement["Action"])) == CRYPTO, statement["Action"]
        assert [synth.root_value(stack, r) for r in as_list(statement["Resource"])] == [key_arn]
        context_keys = statement["Condition"]["ForAnyValue:StringEquals"]["kms:EncryptionContextKeys"]
        assert as_list(context_keys) == [CREDENTIALS_CONTEXT_KEY]
    assert holders == _with("kms:credentials")


def test_only_roles_of_functions_with_kms_access_carry_the_key_user_tag(synth: Synth) -> None:
    tag = key_user_tag("credentials")
    tagged = set()
    for stack, role_id, role in synth.resources("AWS::IAM::Role"):
        tags = {t["Key"]: t["Value"] for t in role["Properties"].get("Tags", [])}
        if tag in tags:
            assert tags[tag] == KEY_USER_TAG_VALUE
            tagged.add(_owner(synth, stack, role_id))
    assert tagged == _with("kms:credentials")


@pytest.mark.parametrize("fn", [fn for fn in catalog.FUNCTIONS if fn.name in _with("kms:credentials")],
                         ids=lambda fn: fn.name)
def test_kms_functions_get_the_key_arn(synth: Synth, fn: catalog.Function) -> None:
    key_id, _ = _key(synth)
    deployed = synth.function(fn.name)
    value = deployed.env["CREDENTIALS_KMS_KEY_ID"]
    assert synth.root_value(deployed.stack, value) == {"Fn::GetAtt": [key_id, "Arn"]}


# --- Bedrock ------------------------------------------------------------------------------


def test_bedrock_invocation_only_for_functions_with_bedrock_access(synth: Synth) -> None:
    by_holder: dict[str, list[dict[str, Any]]] = {}
    for stack, role, statement in _statements_with(synth, "bedrock:"):
        by_holder.setdefault(_owner(synth, stack, role), []).append(statement)
    assert set(by_holder) == _with("bedrock")
    for holder, found in by_holder.items():
        for statement in found:
            assert set(as_list(statement["Action"])) == BEDROCK_INVOKE, (holder, statement["Action"])
        direct = [s for s in found if "Condition" not in s]
        routed = [s for s in found if "Condition" in s]
        assert {render(r) for s in direct for r in as_list(s["Resource"])} == BEDROCK_DIRECT, holder
        # Foundation models of other regions only through this account's inference profiles.
        (through_profiles,) = routed
        assert [render(r) for r in as_list(through_profiles["Resource"])] == [BEDROCK_ROUTED]
        profiles = through_profiles["Condition"]["StringLike"]["bedrock:InferenceProfileArn"]
        assert {render(p) for p in as_list(profiles)} == BEDROCK_PROFILES
        assert set(through_profiles["Condition"]) == {"StringLike"}


def test_bedrock_functions_run_in_the_vpc_next_to_the_bedrock_endpoint(synth: Synth) -> None:
    for name in _with("bedrock"):
        assert "VpcConfig" in synth.function(name).props, name
    endpoints = synth.templates["root"].find_resources("AWS::EC2::VPCEndpoint")
    bedrock = [e["Properties"] for e in endpoints.values()
               if "bedrock-runtime" in str(e["Properties"]["ServiceName"])]
    assert len(bedrock) == 1 and bedrock[0]["PrivateDnsEnabled"] is True
    # Provider APIs (OpenAI, Anthropic) go out through the NAT gateway.
    assert len(synth.templates["root"].find_resources("AWS::EC2::NatGateway")) == 1


# --- Secrets, the provider keys among them ------------------------------------------------


def test_provider_keys_secret_starts_as_an_empty_json_object(synth: Synth) -> None:
    secret_id = cfn_logical_id(synth.root.data.provider_keys)
    props = synth.json("root")["Resources"][secret_id]["Properties"]
    assert props["SecretString"] == PROVIDER_KEYS_INITIAL == "{}"
    assert "GenerateSecretString" not in props, "provider keys are put by operators, not generated"
    outputs = synth.json("root")["Outputs"]
    assert ref_logical_id(outputs["ProviderKeysSecretArn"]["Value"]) == secret_id


@pytest.mark.parametrize("name", ["admin-token", "provider-keys"])
def test_each_secret_is_readable_only_by_functions_with_its_access(synth: Synth, name: str) -> None:
    secret_id = cfn_logical_id(synth.root.data.secrets[name])
    readers = set()
    for stack, role, statement in _statements_with(synth, "secretsmanager:"):
        if any(ref_logical_id(synth.root_value(stack, r)) == secret_id for r in as_list(statement["Resource"])):
            readers.add(_owner(synth, stack, role))
            assert set(as_list(statement["Action"])) <= {"secretsmanager:GetSecretValue",
                                                         "secretsmanager:DescribeSecret"}
    expected = _with(f"secret:{name}")
    assert expected, f"no catalog function reads {name}"
    assert readers == expected
    for fn_name in expected:
        deployed = synth.function(fn_name)
        value = deployed.env[env_name(name, "SECRET_ARN")]
        assert ref_logical_id(synth.root_value(deployed.stack, value)) == secret_id
