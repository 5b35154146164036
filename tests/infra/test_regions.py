"""The region check (``make check-region``): the two layers Stratus takes from AWS accounts,
asked of Lambda (moto stands in for it; it has none of AWS's public layers)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from infra.regions import check_region, layer_arns, main


def test_layer_arns_for_a_supported_region() -> None:
    arns = layer_arns("eu-west-1")
    assert arns["Parameters and Secrets extension"] == (
        "arn:aws:lambda:eu-west-1:015030872274:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:4")
    assert arns["Lambda Web Adapter"] == "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerArm64:25"


def test_a_region_without_the_extension_is_refused_before_any_call() -> None:
    problems = check_region("ap-southeast-7", _OnlyAdapter())
    assert problems == ["Parameters and Secrets extension: aws-cdk-lib knows no 1.0.103 layer in ap-southeast-7 "
                        "(the extension is not published there)"]


class _OnlyAdapter:
    """Answers for the adapter layer only: the extension must not be asked for."""

    def get_layer_version_by_arn(self, Arn: str) -> dict[str, str]:
        assert "LambdaAdapterLayer" in Arn
        return {"LayerVersionArn": Arn}


def test_a_missing_layer_is_reported_with_lambdas_answer(capsys: pytest.CaptureFixture[str]) -> None:
    """Lambda's real answers, stubbed (moto does not implement GetLayerVersionByArn): the
    extension is there, the adapter's version is not visible to this account."""
    client = boto3.client("lambda", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    arns = layer_arns("eu-west-1")
    with Stubber(client) as stub:
        stub.add_response("get_layer_version_by_arn", {"LayerVersionArn": arns["Parameters and Secrets extension"]},
                          {"Arn": arns["Parameters and Secrets extension"]})
        stub.add_client_error("get_layer_version_by_arn", service_error_code="AccessDeniedException",
                              http_status_code=403, expected_params={"Arn": arns["Lambda Web Adapter"]})
        assert main(["eu-west-1"], lambda_client=client) == 1
        stub.assert_no_pending_responses()
    assert capsys.readouterr().err == (f"Lambda Web Adapter: {arns['Lambda Web Adapter']} is not usable in eu-west-1 "
                                       "(AccessDeniedException)\n")
    with Stubber(client) as stub:
        for arn in arns.values():
            stub.add_response("get_layer_version_by_arn", {"LayerVersionArn": arn}, {"Arn": arn})
        assert main(["eu-west-1"], lambda_client=client) == 0
    assert capsys.readouterr().out.count("ok  ") == 2
