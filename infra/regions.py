"""Which regions a stage can be deployed to, and a check before the first deploy.

Two layers come from AWS's own accounts and are published region by region: the AWS
Parameters and Secrets Lambda Extension (every in-VPC function reads its secrets through it;
aws-cdk-lib knows its ARN per region) and the AWS Lambda Web Adapter (the streaming function
URL functions; infra/functions.py pins its version). A region missing either cannot run
Stratus. ``make check-region REGION=<region>`` asks Lambda for both layer versions with the
operator's credentials (GetLayerVersionByArn), so a missing or withdrawn layer shows before a
deploy fails half-way (docs/adr/0048-prod-profile-and-safe-migrations.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infra.node import ensure_node_on_path

# The extension's version every function uses (infra/stratus_stack.py).
PARAMS_AND_SECRETS_VERSION = "1.0.103"


def layer_arns(region: str) -> dict[str, str | None]:
    """The two layers' ARNs in ``region`` for the functions' architecture; None where
    aws-cdk-lib knows no ARN for the extension there (a synth would fail)."""
    ensure_node_on_path()
    from aws_cdk import region_info

    from infra.dependency_layers import ARCHITECTURE
    from infra.functions import _WEB_ADAPTER_LAYERS, WEB_ADAPTER_ACCOUNT, WEB_ADAPTER_LAYER_VERSION

    extension = region_info.RegionInfo.get(region).params_and_secrets_lambda_layer_arn(
        PARAMS_AND_SECRETS_VERSION, ARCHITECTURE.name)
    adapter = (f"arn:aws:lambda:{region}:{WEB_ADAPTER_ACCOUNT}:layer:{_WEB_ADAPTER_LAYERS[ARCHITECTURE.name]}:"
               f"{WEB_ADAPTER_LAYER_VERSION}")
    return {"Parameters and Secrets extension": extension, "Lambda Web Adapter": adapter}


def check_region(region: str, lambda_client: Any) -> list[str]:
    """Problems that would stop a deploy to ``region`` (empty: both layers answer)."""
    from botocore.exceptions import ClientError

    problems = []
    for name, arn in layer_arns(region).items():
        if arn is None:
            problems.append(f"{name}: aws-cdk-lib knows no {PARAMS_AND_SECRETS_VERSION} layer in {region} "
                            "(the extension is not published there)")
            continue
        try:
            lambda_client.get_layer_version_by_arn(Arn=arn)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            problems.append(f"{name}: {arn} is not usable in {region} ({code})")
    return problems


def main(argv: list[str] | None = None, *, lambda_client: Any = None) -> int:
    parser = argparse.ArgumentParser(description="Check that the layers Stratus takes from AWS exist in a region")
    parser.add_argument("region")
    args = parser.parse_args(argv)
    import boto3

    problems = check_region(args.region, lambda_client or boto3.client("lambda", region_name=args.region))
    for problem in problems:
        sys.stderr.write(f"{problem}\n")
    if not problems:
        for name, arn in layer_arns(args.region).items():
            sys.stdout.write(f"ok  {name}: {arn}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
