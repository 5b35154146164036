"""Synthesis helpers for the infra tests: one synthesized app, read through
``aws_cdk.assertions.Template``, with lookups by the catalog's names."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app import build_app, root_stack
from infra.functions import FUNCTION_TAG
from infra.nag import logical_id as cfn_logical_id
from infra.stratus_stack import StratusStack

# Assets are referenced where they are instead of being copied into the assembly: the
# templates are what the tests read, and copying ~80 MB of layers per session is waste.
TEST_CONTEXT: dict[str, Any] = {"aws:cdk:disable-asset-staging": True, "aws:cdk:enable-asset-metadata": True}

Resource = Mapping[str, Any]


@dataclass(frozen=True)
class DeployedFunction:
    name: str
    stack: str  # "root" or the domain
    logical_id: str
    resource: Resource

    @property
    def props(self) -> dict[str, Any]:
        return dict(self.resource["Properties"])

    @property
    def env(self) -> dict[str, Any]:
        return dict(self.props.get("Environment", {}).get("Variables", {}))


@dataclass
class Synth:
    app: App
    root: StratusStack
    outdir: Path
    templates: dict[str, Template] = field(default_factory=dict)  # "root" and each domain

    @property
    def nested(self) -> dict[str, Template]:
        return {name: t for name, t in self.templates.items() if name != "root"}

    def json(self, stack: str) -> dict[str, Any]:
        return dict(self.templates[stack].to_json())

    def resources(self, resource_type: str) -> list[tuple[str, str, Resource]]:
        """(stack, logical id, resource) for every resource of a type, in every stack."""
        found = []
        for stack, template in self.templates.items():
            for logical_id, resource in template.find_resources(resource_type).items():
                found.append((stack, logical_id, resource))
        return found

    def functions(self) -> dict[str, list[DeployedFunction]]:
        """Catalog name → the Lambda functions tagged with it (a list, to catch duplicates)."""
        by_name: dict[str, list[DeployedFunction]] = {}
        for stack, logical_id, resource in self.resources("AWS::Lambda::Function"):
            tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
            if FUNCTION_TAG in tags:
                name = tags[FUNCTION_TAG]
                by_name.setdefault(name, []).append(DeployedFunction(name, stack, logical_id, resource))
        return by_name

    def function(self, name: str) -> DeployedFunction:
        (found,) = self.functions()[name]
        return found

    def role_owners(self) -> dict[tuple[str, str], str]:
        """(stack, role logical id) → the catalog function whose execution role it is."""
        owners = {}
        for name, found in self.functions().items():
            for fn in found:
                role = ref_logical_id(fn.props["Role"])
                assert role is not None
                owners[(fn.stack, role)] = name
        return owners

    def role_statements(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(stack, role logical id, statement) for every statement of every IAM policy in
        the app, once per role the policy is attached to."""
        for stack, _, policy in self.resources("AWS::IAM::Policy"):
            for role in policy["Properties"].get("Roles", []):
                role_id = ref_logical_id(role)
                assert role_id is not None
                for statement in statements(policy):
                    yield stack, role_id, statement

    def root_value(self, stack: str, value: Any) -> Any:
        """``value`` as the root stack sees it: a nested stack's parameter is replaced by
        what the root passes in (cross-stack references arrive as parameters)."""
        if stack == "root" or not (isinstance(value, dict) and "Ref" in value):
            return value
        nested = self.root.domain_stacks[stack].nested_stack_resource
        assert nested is not None
        passed = self.json("root")["Resources"][cfn_logical_id(nested)]["Properties"].get("Parameters", {})
        return passed.get(value["Ref"], value)

    def validation_report(self) -> dict[str, Any]:
        return dict(json.loads((self.outdir / "validation-report.json").read_text()))


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    app = build_app({**TEST_CONTEXT, **(context or {})}, outdir=str(outdir))
    # One synthesis; Template.from_stack below reuses the cached assembly. cdk-nag runs
    # here and raises on any unacknowledged error.
    app.synth()
    root = root_stack(app)
    result = Synth(app=app, root=root, outdir=outdir)
    result.templates["root"] = Template.from_stack(root)
    for domain, stack in root.domain_stacks.items():
        result.templates[domain] = Template.from_stack(stack)
    return result


def layer_asset(synth: Synth, stack: str, layer: Any) -> str:
    """The layer asset (``base``, ``embed+llm``) a function's ``Layers`` entry points at, read
    from the root stack's layer version description ``Stratus <asset>: <pins>``."""
    logical_id = ref_logical_id(synth.root_value(stack, layer))
    assert logical_id is not None, layer
    resource = synth.json("root")["Resources"][logical_id]
    assert resource["Type"] == "AWS::Lambda::LayerVersion"
    return str(resource["Properties"]["Description"]).split(":", 1)[0].removeprefix("Stratus ")


def ref_logical_id(value: Any) -> str | None:
    """The logical id a ``Ref`` / ``Fn::GetAtt`` points at, if ``value`` is one."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def points_at(value: Any, logical_id: str, construct: str) -> bool:
    """Whether ``value`` names the resource ``logical_id`` of its own stack, or, from another
    domain's nested stack, that resource's ARN as the parameter CDK passes down (named after the
    construct ``construct``, e.g. ``WorkflowFetch``, and ending in ``Arn``)."""
    target = ref_logical_id(value)
    if target is None:
        return False
    return target == logical_id or (target.startswith("referenceto") and target.endswith("Arn")
                                    and f"{construct}" in target.removeprefix("referenceto").split("Outputs")[-1])


def statements(resource: Resource) -> list[dict[str, Any]]:
    document = resource["Properties"]["PolicyDocument"]
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    """A template string value with pseudo parameters shown as ``<AWS::Region>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part) for part in parts)
    raise ValueError(f"cannot render {value!r}")
