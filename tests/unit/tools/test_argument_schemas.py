"""Checking a call's arguments against a tool's schema (a tenant's OpenAPI document, an MCP
server's tool list) never fetches what the schema names: a ``$ref`` or ``$dynamicRef`` to a
URL is unresolvable, not a request made from inside the VPC past the egress policy."""

from __future__ import annotations

from shared.tools.runtime import argument_problems
from tests.support.http_target import HttpTarget


def test_references_to_urls_are_never_fetched() -> None:
    with HttpTarget() as target:
        for schema in ({"type": "object", "properties": {"a": {"$ref": target.url("/echo")}}},
                       {"$dynamicRef": target.url("/status?code=200")},
                       {"$ref": "http://169.254.169.254/latest/meta-data/"}):
            assert argument_problems(schema, {"a": 1}) == []
        assert target.paths() == []


def test_references_inside_the_schema_still_resolve() -> None:
    schema = {"type": "object", "$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}}
    assert argument_problems(schema, {"a": "x"}) == ["arguments.a: 'x' is not of type 'integer'"]
    assert argument_problems(schema, {"a": 2}) == []
