"""The HTTP API (docs/architecture.md §2.2, §2.3): one API, its ``$default`` stage with access logs and
throttling, and the Lambda REQUEST authorizer. Routes are added by each domain's stack."""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StratusConfig
from shared.auth.origin import ORIGIN_HEADER

# An HTTP API holds at most 300 integrations (one per route here).
MAX_ROUTES = 300

_ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "tenantId": "$context.authorizer.tenant_id",
})


class Api(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StratusConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.http_api = apigwv2.HttpApi(
            self, "HttpApi",
            api_name=config.prefix,
            description="Stratus HTTP API (routes generated from functions/catalog/)",
            # The stage is created below so it can carry access logs and throttling.
            create_default_stage=False,
        )
        access_logs = logs.LogGroup(self, "AccessLogs", retention=config.log_retention,
                                    removal_policy=RemovalPolicy.DESTROY)
        self.stage = apigwv2.HttpStage(
            self, "DefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=config.api_throttle_rate,
                                              burst_limit=config.api_throttle_burst),
        )
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn, format=_ACCESS_LOG_FORMAT)
        self.route_count = 0

    @property
    def url(self) -> str:
        """The execute-api URL: CloudFront's origin only, never given to clients (it refuses
        requests without the edge's origin header)."""
        return self.stage.url

    def count_route(self) -> None:
        self.route_count += 1
        if self.route_count > MAX_ROUTES:
            raise ValueError(f"the HTTP API would exceed {MAX_ROUTES} integrations: split the API")


def add_request_authorizer(scope: Construct, api: Api, handler: lambda_.IFunction, *,
                           identity_header: str) -> apigwv2.IHttpRouteAuthorizer:
    """The Lambda REQUEST authorizer (payload 2.0, simple responses), created beside its
    function. It never denies (docs/architecture.md §2.3); its answer is cached per Authorization
    header for ``authorizer_cache_ttl_s``.

    With caching on, API Gateway itself answers 401 when the identity source (the header)
    is missing, without calling the authorizer: the one case documented in
    docs/adr/0012-authorizer-caching.md. With a TTL of 0 there is no identity source, so
    the authorizer runs on every request and the middleware answers in the envelope.
    """
    ttl = api.config.authorizer_cache_ttl_s
    # The edge's origin header is an identity source too: API Gateway answers a request without
    # it itself (401) and never caches an answer across origin values; the authorizer checks
    # its value (docs/adr/0047-concurrency-budget-and-side-doors.md).
    identity_source = ([f"$request.header.{identity_header}", f"$request.header.{ORIGIN_HEADER}"]
                       if ttl > 0 else [])
    stack = Stack.of(scope)
    authorizer = apigwv2.HttpAuthorizer(
        scope, "HttpApiAuthorizer",
        http_api=api.http_api,
        type=apigwv2.HttpAuthorizerType.LAMBDA,
        authorizer_name=f"{api.config.prefix}-authorizer",
        identity_source=identity_source,
        authorizer_uri=(f"arn:{stack.partition}:apigateway:{stack.region}:lambda:path/2015-03-31/functions/"
                        f"{handler.function_arn}/invocations"),
        enable_simple_responses=True,
        payload_format_version=apigwv2.AuthorizerPayloadVersion.VERSION_2_0,
        results_cache_ttl=Duration.seconds(ttl),
    )
    if not identity_source:
        # CloudFormation rejects an empty list where the property is optional.
        cfn = authorizer.node.default_child
        assert isinstance(cfn, apigwv2.CfnAuthorizer)
        cfn.add_property_deletion_override("IdentitySource")
    handler.add_permission(
        "HttpApiAuthorizerInvoke",
        principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
        source_arn=stack.format_arn(service="execute-api", resource=api.http_api.api_id,
                                    resource_name=f"authorizers/{authorizer.authorizer_id}"),
        scope=scope,
    )
    return apigwv2.HttpAuthorizer.from_http_authorizer_attributes(
        scope, "HttpApiAuthorizerRef", authorizer_id=authorizer.authorizer_id,
        authorizer_type="CUSTOM")
