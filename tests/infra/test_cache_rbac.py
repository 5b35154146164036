"""The cache's password RBAC on the synthesized template (docs/adr/0048): a user group with a
disabled ``default`` user and the application user is attached to the serverless cache, the
passwords are dynamic references only, and exactly the functions with ``redis`` access know the
user and may read its password's secret (and nothing else may)."""

from __future__ import annotations

import json
from typing import Any

from functions import catalog
from infra.nag import logical_id as cfn_logical_id
from shared.cache.redis_adapter import APP_ACCESS_STRING, APP_USER
from tests.infra.support import Synth, as_list, ref_logical_id


def _root(synth: Synth, resource_type: str) -> dict[str, Any]:
    return dict(synth.templates["root"].find_resources(resource_type))


def _users(synth: Synth) -> dict[str, dict[str, Any]]:
    return {u["Properties"]["UserName"]: u for u in _root(synth, "AWS::ElastiCache::User").values()}


def _redis_functions() -> set[str]:
    return {fn.name for fn in catalog.FUNCTIONS if any(a.resource == "redis" for a in fn.access)}


def test_the_cache_has_a_user_group_of_a_disabled_default_and_the_app_user(synth: Synth) -> None:
    (_, cache), = _root(synth, "AWS::ElastiCache::ServerlessCache").items()
    (group_id, group), = _root(synth, "AWS::ElastiCache::UserGroup").items()
    props = group["Properties"]
    assert props["Engine"] == cache["Properties"]["Engine"] == "valkey"
    assert cache["Properties"]["UserGroupId"] == props["UserGroupId"]
    assert group_id in as_list(cache["DependsOn"])

    users = _users(synth)
    assert set(users) == {"default", APP_USER}
    assert sorted(props["UserIds"]) == sorted(u["Properties"]["UserId"] for u in users.values())
    by_id = {logical_id: u for logical_id, u in _root(synth, "AWS::ElastiCache::User").items()}
    assert set(as_list(group["DependsOn"])) >= set(by_id)
    for user in users.values():
        assert user["Properties"]["Engine"] == "valkey"
        # A Valkey group admits only users that authenticate: both have a password.
        assert user["Properties"]["AuthenticationMode"]["Type"] == "password"
    default = users["default"]["Properties"]["AccessString"].split()
    assert default[0] == "off" and "-@all" in default and not any(r.startswith(("+", "~", "&")) for r in default)
    assert users[APP_USER]["Properties"]["AccessString"] == APP_ACCESS_STRING
    assert "-@dangerous" in APP_ACCESS_STRING.split()


def test_passwords_are_only_dynamic_references_to_generated_secrets(synth: Synth) -> None:
    resources = synth.json("root")["Resources"]
    secrets = {"default": cfn_logical_id(synth.root.data.cache_default_secret),
               APP_USER: cfn_logical_id(synth.root.data.cache_secret)}
    assert secrets["default"] != secrets[APP_USER]
    for name, user in _users(synth).items():
        (password,) = user["Properties"]["AuthenticationMode"]["Passwords"]
        parts = password["Fn::Join"][1]
        assert parts[0] == "{{resolve:secretsmanager:" and parts[-1] == ":SecretString:::}}", parts
        assert ref_logical_id(parts[1]) == secrets[name]
        assert "Passwords" not in user["Properties"]  # the legacy property, which would hold values
        secret = resources[secrets[name]]["Properties"]
        assert "SecretString" not in secret and secret["GenerateSecretString"]["PasswordLength"] >= 16
        assert secret["GenerateSecretString"]["ExcludePunctuation"] is True


def test_every_redis_function_knows_the_user_and_the_secret(synth: Synth) -> None:
    secret = cfn_logical_id(synth.root.data.cache_secret)
    redis_functions = _redis_functions()
    assert {"chat", "workflow-stream"} <= redis_functions
    for fn in catalog.FUNCTIONS:
        deployed = synth.function(fn.name)
        env = deployed.env
        if fn.name in redis_functions:
            assert env["REDIS_USER"] == APP_USER, fn.name
            assert ref_logical_id(synth.root_value(deployed.stack, env["REDIS_SECRET_ARN"])) == secret, fn.name
        else:
            assert not {"REDIS_USER", "REDIS_SECRET_ARN"} & set(env), fn.name


def test_only_redis_functions_may_read_the_cache_password_and_nobody_the_default_one(synth: Synth) -> None:
    app_secret = cfn_logical_id(synth.root.data.cache_secret)
    default_secret = cfn_logical_id(synth.root.data.cache_default_secret)
    owners = synth.role_owners()
    readers: set[str] = set()
    for stack, role, statement in synth.role_statements():
        # A nested stack's reference arrives as a parameter: named as the root passes it in.
        named = {ref_logical_id(synth.root_value(stack, r)) for r in as_list(statement.get("Resource", []))}
        assert default_secret not in named, (stack, role, statement)
        if app_secret in named:
            assert set(as_list(statement["Action"])) <= {"secretsmanager:GetSecretValue",
                                                         "secretsmanager:DescribeSecret"}, statement
            readers.add(owners[(stack, role)])
    assert readers == _redis_functions()
    # No wildcard over secrets that would include it anyway.
    for _, _, statement in synth.role_statements():
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
            assert "*" not in json.dumps(statement.get("Resource")), statement
