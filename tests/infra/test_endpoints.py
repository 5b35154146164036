"""Functions in private subnets reach AWS APIs through interface endpoints (or the S3 gateway);
only functions with InternetEgressSg have the NAT. Every AWS API an endpoint-only function can
call — from its catalog access, from the code's boto3 clients and from the Parameters and
Secrets extension — must have its endpoint; STS and SSM are not called by anything (Lambda
hands the role's credentials in the environment; the extension is asked for secrets only)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from functions import catalog
from infra.network import INTERFACE_ENDPOINTS, needs_internet
from tests.infra.support import Synth

REPO = Path(__file__).resolve().parents[2]
# Catalog access kinds reached inside the VPC through security groups (no AWS API).
IN_VPC = {"database", "database_admin", "redis", "opensearch"}
# Catalog access kind → the endpoint its API calls use ("S3" is the gateway endpoint).
KIND_ENDPOINT = {"bucket": "S3", "queue": "Sqs", "state_machine": "StepFunctions", "secret": "SecretsManager",
                 "kms": "Kms", "bedrock": "BedrockRuntime"}
# boto3 service name → endpoint; "lambda" has none: its callers have the NAT (needs_internet).
CLIENT_ENDPOINT = {"s3": "S3", "sqs": "Sqs", "stepfunctions": "StepFunctions", "kms": "Kms",
                   "bedrock-runtime": "BedrockRuntime", "secretsmanager": "SecretsManager"}
NAT_ONLY_CLIENTS = {"lambda"}
# Every in-VPC function: the extension reads its secrets from Secrets Manager, and Lambda's own
# log delivery needs nothing, but code using the Logs API would.
ALWAYS = {"SecretsManager", "Logs"}
REACHABLE = {*INTERFACE_ENDPOINTS, "S3"}


def test_every_api_an_endpoint_only_function_calls_has_an_endpoint() -> None:
    isolated = [fn for fn in catalog.FUNCTIONS if fn.in_vpc and not needs_internet(fn)]
    assert isolated
    assert ALWAYS <= REACHABLE
    for fn in isolated:
        for access in fn.access:
            if access.kind in IN_VPC:
                continue
            assert access.kind in KIND_ENDPOINT, (
                f"{fn.name}: access kind {access.kind!r} calls an AWS API: add its interface endpoint "
                "(infra/network.py INTERFACE_ENDPOINTS) or needs_internet")
            assert KIND_ENDPOINT[access.kind] in REACHABLE, (fn.name, access.kind)


def test_the_code_creates_no_client_for_an_api_without_an_endpoint() -> None:
    pattern = re.compile(r"""client\(\s*["']([a-z0-9-]+)["']""")
    services: dict[str, set[str]] = {}
    for path in [*REPO.glob("shared/**/*.py"), *REPO.glob("functions/**/*.py")]:
        for service in pattern.findall(path.read_text()):
            services.setdefault(service, set()).add(str(path.relative_to(REPO)))
    assert {"s3", "sqs", "stepfunctions"} <= set(services)  # the scan finds the known clients
    unknown = {s: sorted(p) for s, p in services.items() if s not in CLIENT_ENDPOINT and s not in NAT_ONLY_CLIENTS}
    assert not unknown, f"clients of AWS APIs with no endpoint (add one in infra/network.py): {unknown}"
    assert {CLIENT_ENDPOINT[s] for s in services if s in CLIENT_ENDPOINT} <= REACHABLE
    # Neither STS nor SSM: no client, and the extension is never asked for a parameter.
    assert not {"sts", "ssm"} & set(services)
    sources = "".join(p.read_text() for p in REPO.glob("shared/aws/*.py"))
    assert "/secretsmanager/get" in sources and "/systemsmanager/" not in sources


def test_the_template_has_exactly_these_endpoints_fenced_and_private(synth: Synth) -> None:
    root = synth.json("root")["Resources"]
    endpoints = {k: r["Properties"] for k, r in root.items() if r["Type"] == "AWS::EC2::VPCEndpoint"}
    services = {json.dumps(p["ServiceName"]).rsplit(".", 1)[-1].strip('"]}') for p in endpoints.values()}
    assert services == {"secretsmanager", "sqs", "states", "kms", "logs", "bedrock-runtime", "s3"}
    assert len(endpoints) == len(INTERFACE_ENDPOINTS) + 1
    for name, props in endpoints.items():
        if props.get("VpcEndpointType") == "Interface":
            assert props["PrivateDnsEnabled"] is True, name
            assert props["PolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]["aws:PrincipalAccount"], name
