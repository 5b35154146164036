"""The edge (docs/architecture.md §2.1): one CloudFront distribution, one base URL for clients. The
streaming paths of every ``FunctionUrl`` catalog entry go to that function's URL; everything
else goes to the HTTP API. Generated from the catalog; nothing here names a function.

Nothing is cached (every answer is per tenant and per token): each behaviour uses the managed
``CachingDisabled`` cache policy and forwards every viewer header but ``Host`` (the managed
``AllViewerExceptHostHeader`` origin request policy), so ``Authorization`` and ``Last-Event-ID``
reach the origin and the origin sees its own host name, as API Gateway and function URLs
require. The streaming behaviours never compress: a compressed SSE stream is buffered.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Fn
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions import catalog
from functions.catalog import FunctionUrl
from infra import nag
from infra.api import Api
from infra.config import StratusConfig
from infra.topology import stream_path_patterns

# API Gateway's HTTP API answers within 30 s (its integration limit): CloudFront's default.
API_READ_TIMEOUT = Duration.seconds(30)
# Between two bytes of a streamed answer (the SSE heartbeat comes at least every 15 s), and
# for a whole non-streamed answer: 60 s is the most CloudFront allows without a quota increase.
STREAM_READ_TIMEOUT = Duration.seconds(60)
LOG_PREFIX = "cloudfront/"


class Edge(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StratusConfig, api: Api,
                 function_urls: Mapping[str, lambda_.IFunctionUrl], log_bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        # The HTTP API's $default stage answers at the root of its execute-api host name.
        api_origin = origins.HttpOrigin(
            Fn.select(2, Fn.split("/", api.http_api.api_endpoint)),
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
            read_timeout=API_READ_TIMEOUT,
        )
        self.behaviors: dict[str, str] = {}  # path pattern → catalog function name
        additional: dict[str, cloudfront.BehaviorOptions] = {}
        for fn in catalog.streaming_functions():
            assert isinstance(fn.trigger, FunctionUrl)
            if fn.name not in function_urls:
                raise ValueError(f"{fn.name}: no function URL was made for its FunctionUrl trigger")
            # No origin access control: the URL's AuthType is NONE (the app authenticates).
            origin = origins.FunctionUrlOrigin(function_urls[fn.name], read_timeout=STREAM_READ_TIMEOUT)
            options = _behavior(origin, compress=False)
            for pattern in stream_path_patterns(fn.trigger):
                additional[pattern] = options
                self.behaviors[pattern] = fn.name
        self.distribution = cloudfront.Distribution(
            self, "Distribution",
            comment=f"Stratus {config.stage}: the HTTP API and the streaming function URLs under one base URL",
            default_behavior=_behavior(api_origin, compress=True),
            additional_behaviors=additional,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_ipv6=True,
            # Standard logs into the stack's access-log bucket (ACLs enabled for CloudFront).
            enable_logging=True,
            log_bucket=log_bucket,
            log_file_prefix=LOG_PREFIX,
        )
        nag.distribution(self.distribution)

    @property
    def url(self) -> str:
        return f"https://{self.distribution.distribution_domain_name}"


def _behavior(origin: cloudfront.IOrigin, *, compress: bool) -> cloudfront.BehaviorOptions:
    return cloudfront.BehaviorOptions(
        origin=origin,
        allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
        cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
        cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
        origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        # An API: a plain-HTTP request is refused (403), not redirected (a redirected POST
        # would lose its body in most clients).
        viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        compress=compress,
    )
