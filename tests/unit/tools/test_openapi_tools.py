"""OpenAPI documents read into tools: operations, names, $refs, parameters and bodies as one
argument schema, problems located; a call built into the request it stands for, auth applied;
arguments checked against the schema."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.tools.openapi import OpenApiProblem, build_call, read_tool_set
from shared.tools.runtime import argument_problems, auth_headers, check_arguments_schema

PETS: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Pets", "version": "1"},
    "servers": [{"url": "https://{region}.pets.example/v1", "variables": {"region": {"default": "eu"}}}],
    "paths": {
        "/pets/{petId}": {
            "parameters": [{"$ref": "#/components/parameters/PetId"}],
            "get": {"operationId": "getPet", "summary": "One pet",
                    "parameters": [{"name": "fields", "in": "query", "schema": {"type": "array",
                                                                                 "items": {"type": "string"}}},
                                   {"name": "X-Trace", "in": "header", "schema": {"type": "string"}}]},
            "put": {"summary": "Replace a pet",
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Pet"}}}}},
        },
        "/pets": {
            "get": {"operationId": "list pets!", "parameters": [
                {"name": "limit", "in": "query", "required": True, "schema": {"type": "integer", "maximum": 50}},
                {"name": "limit", "in": "header", "schema": {"type": "string"}}]},
        },
    },
    "components": {
        "parameters": {"PetId": {"name": "petId", "in": "path", "required": True, "schema": {"type": "integer"}}},
        "schemas": {
            "Pet": {"type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}, "tag": {"type": "string", "nullable": True},
                                   "parent": {"$ref": "#/components/schemas/Pet"}}},
        },
    },
}


def _tools(document: Any) -> dict[str, Any]:
    _, tool_set = read_tool_set(document)
    return {op.name: op for op in tool_set.operations}


def test_each_operation_becomes_a_tool_named_by_its_operation_id_or_method_and_path() -> None:
    tools = _tools(PETS)
    assert sorted(tools) == ["getPet", "list_pets", "put_pets_petId"]
    assert tools["getPet"].description == "One pet"
    assert tools["put_pets_petId"].method == "PUT"
    _, tool_set = read_tool_set(PETS)
    assert tool_set.default_server == "https://eu.pets.example/v1"


def test_parameters_and_body_make_one_argument_schema_with_refs_resolved() -> None:
    tools = _tools(PETS)
    get_pet = tools["getPet"].arguments_schema
    assert get_pet["required"] == ["petId"]  # the path item's parameter, through its $ref
    assert get_pet["properties"]["petId"]["type"] == "integer"
    assert get_pet["properties"]["fields"]["type"] == "array"
    assert "X-Trace" in get_pet["properties"]
    put = tools["put_pets_petId"].arguments_schema
    assert put["required"] == ["petId", "body"]
    body = put["properties"]["body"]
    assert body["required"] == ["name"]
    # 3.0's nullable folded into the type; the recursive reference cut where it recurses.
    assert body["properties"]["tag"]["type"] == ["string", "null"]
    assert body["properties"]["parent"]["description"] == "(recursive: Pet)"
    # Two locations sharing a name: each prefixed with its location.
    listing = tools["list_pets"].arguments_schema
    assert set(listing["properties"]) == {"query_limit", "header_limit"}
    assert listing["required"] == ["query_limit"]
    for op in tools.values():
        assert check_arguments_schema(op.arguments_schema) is None


def test_yaml_and_json_strings_are_read_like_objects() -> None:
    import yaml

    assert sorted(_tools(yaml.safe_dump(PETS))) == sorted(_tools(json.dumps(PETS)))


@pytest.mark.parametrize(("document", "where", "words"), [
    ("openapi: [", "", "neither JSON nor YAML"),
    ({"swagger": "2.0", "paths": {}}, "swagger", "Swagger 2.0"),
    ({"openapi": "4.0.0", "paths": {"/a": {}}}, "openapi", "not supported"),
    ({"openapi": "3.1.0", "info": {}}, "paths", "no paths"),
    ({"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}]}}}},
     "paths/~1a/get/parameters/0/$ref", "does not resolve"),
    ({"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [{"$ref": "other.yaml#/P"}]}}}},
     "paths/~1a/get/parameters/0/$ref", "outside the document"),
    ({"openapi": "3.1.0", "paths": {"/a/{id}": {"get": {}}}}, "paths/~1a~1{id}/get", "no such path parameter"),
    ({"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [{"name": "x", "in": "body"}]}}}},
     "paths/~1a/get/parameters/0/in", "must be one of"),
    ({"openapi": "3.1.0", "paths": {"/a": {"summary": "nothing"}}}, "paths", "no operations"),
])
def test_invalid_documents_name_the_problem_and_where(document: Any, where: str, words: str) -> None:
    with pytest.raises(OpenApiProblem) as info:
        read_tool_set(document)
    assert info.value.where == where
    assert words in info.value.message


def test_a_reference_bomb_is_refused_not_expanded() -> None:
    schemas = {"S0": {"type": "string"}}
    for i in range(1, 40):
        schemas[f"S{i}"] = {"type": "object", "properties": {"a": {"$ref": f"#/components/schemas/S{i - 1}"},
                                                              "b": {"$ref": f"#/components/schemas/S{i - 1}"}}}
    document = {"openapi": "3.1.0", "components": {"schemas": schemas}, "paths": {"/a": {"post": {
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S39"}}}}}}}}
    with pytest.raises(OpenApiProblem) as info:
        read_tool_set(document)
    assert "expand to too much" in info.value.message


def test_a_call_builds_the_request_path_query_headers_cookie_and_body() -> None:
    tools = _tools(PETS)
    call = build_call(tools["getPet"], "https://api.example/v1", {"petId": 7, "fields": ["a", "b"], "X-Trace": "t1"})
    assert call.method == "GET"
    assert call.url == "https://api.example/v1/pets/7"
    assert call.params == [("fields", "a"), ("fields", "b")]
    assert call.headers == [("X-Trace", "t1")]
    assert call.body is None
    put = build_call(tools["put_pets_petId"], "https://api.example/v1/", {"petId": "a/b", "body": {"name": "Rex"}})
    assert put.url == "https://api.example/v1/pets/a%2Fb"  # a path value cannot add segments
    for dots in ("..", "."):  # ...nor take any away
        climbed = build_call(tools["put_pets_petId"], "https://api.example/v1/", {"petId": dots})
        assert climbed.url == "https://api.example/v1/pets/" + "%2E" * len(dots)
    assert build_call(tools["getPet"], "https://api.example/v1", {"petId": "a.b"}).url == \
        "https://api.example/v1/pets/a.b"
    assert json.loads(put.body or b"") == {"name": "Rex"}
    assert ("Content-Type", "application/json") in put.headers
    document = {"openapi": "3.1.0", "paths": {"/s": {"get": {"operationId": "s", "parameters": [
        {"name": "session", "in": "cookie", "schema": {"type": "string"}}]}}}}
    cookie = build_call(_tools(document)["s"], "http://h", {"session": "x y"})
    assert cookie.headers == [("Cookie", "session=x%20y")]


def test_auth_is_applied_as_its_kind_says() -> None:
    assert auth_headers({"type": "none"}, None) == ([], [])
    assert auth_headers({"type": "bearer"}, "tok") == ([("Authorization", "Bearer tok")], [])
    headers, _ = auth_headers({"type": "basic", "username": "ann"}, "pw")
    assert base64.b64decode(headers[0][1].removeprefix("Basic ")) == b"ann:pw"
    assert auth_headers({"type": "api_key", "in": "header", "name": "X-Key"}, "k") == ([("X-Key", "k")], [])
    assert auth_headers({"type": "api_key", "in": "query", "name": "key"}, "k") == ([], [("key", "k")])


def test_arguments_are_checked_against_the_schema_naming_each_problem() -> None:
    schema = _tools(PETS)["put_pets_petId"].arguments_schema
    assert argument_problems(schema, {"petId": 1, "body": {"name": "Rex"}}) == []
    problems = argument_problems(schema, {"petId": "x", "body": {}, "extra": 1})
    assert any(p.startswith("arguments.petId:") for p in problems)
    assert any(p.startswith("arguments.body:") and "'name' is a required property" in p for p in problems)
    assert any("extra" in p for p in problems)
    listing = _tools(PETS)["list_pets"].arguments_schema
    assert argument_problems(listing, {"query_limit": 51}) == ["arguments.query_limit: 51 is greater than the "
                                                               "maximum of 50"]
