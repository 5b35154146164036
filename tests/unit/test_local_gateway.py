"""The local gateway's mapping of handler results, as API Gateway maps them."""

# No `from __future__ import annotations`: Powertools reads the endpoint's return annotation.

from aws_lambda_powertools.event_handler import Response

from infra.local.gateway import result_to_http


def test_a_204_carries_no_body_nor_body_headers() -> None:
    # What Powertools answered for Response(204, JSON, ""): a "null" body, typed as JSON.
    status, headers, _, body = result_to_http({"statusCode": 204, "body": "null", "isBase64Encoded": False,
                                               "headers": {"Content-Type": "application/json",
                                                           "X-Request-Id": "r1"}})
    assert (status, body) == (204, b"")
    assert headers == {"x-request-id": "r1"}


def test_other_statuses_keep_their_body() -> None:
    status, headers, _, body = result_to_http({"statusCode": 200, "body": '{"a":1}',
                                               "headers": {"Content-Type": "application/json"}})
    assert (status, body, headers["content-type"]) == (200, b'{"a":1}', "application/json")


def test_no_content_answers_no_body_and_no_content_type() -> None:
    from dataclasses import replace

    from functions.catalog import function_for_module
    from shared.http.api import StratusApp
    from tests.support.events import http_event

    function = function_for_module("functions.tenancy.delete_api_key")
    assert not isinstance(function.trigger, str)
    app = StratusApp(replace(function, trigger=replace(function.trigger, auth=False)))  # type: ignore[arg-type]

    @app.endpoint
    def delete_api_key(api_key_id: str) -> Response[None]:
        return app.no_content()

    event = http_event("DELETE", "/api/v1/api-keys/k1", path_parameters={"api_key_id": "k1"})
    event["routeKey"] = "DELETE /api/v1/api-keys/{api_key_id}"
    result = app.dispatch(event, None)
    assert result["statusCode"] == 204 and not result.get("body")
    assert "Content-Type" not in result["headers"] and result["headers"]["X-Request-Id"]
