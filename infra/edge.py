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

from aws_cdk import Aws, CfnRule, Duration, Fn, SecretValue, Stack, Token
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from functions import catalog
from functions.catalog import FunctionUrl
from infra import nag
from infra.api import Api
from infra.config import StratusConfig
from infra.topology import stream_path_patterns
from shared.auth.origin import ORIGIN_HEADER

# API Gateway's HTTP API answers within 30 s (its integration limit): CloudFront's default.
API_READ_TIMEOUT = Duration.seconds(30)
# Between two bytes of a streamed answer (the SSE heartbeat comes at least every 15 s), and
# for a whole non-streamed answer: 60 s is the most CloudFront allows without a quota increase.
STREAM_READ_TIMEOUT = Duration.seconds(60)
LOG_PREFIX = "cloudfront/"
# A CLOUDFRONT-scope web ACL exists in us-east-1 only (docs/adr/0047).
WAF_REGION = "us-east-1"
# AWS's common rule set limits bodies to 8 KB (SizeRestrictions_BODY): the API takes bodies up to
# max_body_bytes (1 MiB) and checks them itself, so that one rule only counts.
WAF_COUNTED_COMMON_RULES = ("SizeRestrictions_BODY",)


class Edge(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StratusConfig, api: Api,
                 function_urls: Mapping[str, lambda_.IFunctionUrl], log_bucket: s3.IBucket,
                 origin_secret: secretsmanager.ISecret) -> None:
        super().__init__(scope, construct_id)
        # Every origin gets the origin secret as a header: the authorizer and the apps refuse a
        # request without it, so neither execute-api nor a function URL is a way around the edge.
        # The template holds a dynamic reference ({{resolve:secretsmanager:...}}), not the value.
        # With origin_secret_version the reference names that version: changing it is what makes
        # CloudFormation update the distribution with a rotated value (README).
        secret_value = (SecretValue.secrets_manager(origin_secret.secret_arn, version_id=config.origin_secret_version)
                        if config.origin_secret_version else origin_secret.secret_value)
        origin_headers = {ORIGIN_HEADER: secret_value.unsafe_unwrap()}
        # The HTTP API's $default stage answers at the root of its execute-api host name.
        api_origin = origins.HttpOrigin(
            Fn.select(2, Fn.split("/", api.http_api.api_endpoint)),
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
            read_timeout=API_READ_TIMEOUT,
            custom_headers=origin_headers,
        )
        self.behaviors: dict[str, str] = {}  # path pattern → catalog function name
        additional: dict[str, cloudfront.BehaviorOptions] = {}
        for fn in catalog.streaming_functions():
            assert isinstance(fn.trigger, FunctionUrl)
            if fn.name not in function_urls:
                raise ValueError(f"{fn.name}: no function URL was made for its FunctionUrl trigger")
            # No origin access control: the URL's AuthType is NONE (the app authenticates).
            origin = origins.FunctionUrlOrigin(function_urls[fn.name], read_timeout=STREAM_READ_TIMEOUT,
                                               custom_headers=origin_headers)
            options = _behavior(origin, compress=False)
            for pattern in stream_path_patterns(fn.trigger):
                additional[pattern] = options
                self.behaviors[pattern] = fn.name
        self.web_acl_arn = self._web_acl(config)
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
            web_acl_id=self.web_acl_arn,
        )
        nag.distribution(self.distribution, waf=self.web_acl_arn is not None)

    @property
    def url(self) -> str:
        return f"https://{self.distribution.distribution_domain_name}"

    def _web_acl(self, config: StratusConfig) -> str | None:
        """The stage's WAF: a web ACL ARN given by config (made in us-east-1 by whoever runs the
        account's edge), or one made here when the stage deploys to us-east-1; none by default."""
        if config.waf_web_acl_arn:
            return config.waf_web_acl_arn
        if not config.waf:
            return None
        region = Stack.of(self).region
        if not Token.is_unresolved(region) and region != WAF_REGION:
            raise ValueError(f"waf=true makes the CloudFront web ACL in this stack, which must then deploy to "
                             f"{WAF_REGION} (not {region}); elsewhere create it there and give its ARN as "
                             "waf_web_acl_arn (docs/adr/0047-concurrency-budget-and-side-doors.md)")
        # An environment-agnostic template: the deploy stops before creating anything elsewhere.
        rule = CfnRule(self, "WafRegion")
        rule.add_assertion(Fn.condition_equals(Aws.REGION, WAF_REGION),
                           f"waf=true needs the stack in {WAF_REGION} (CloudFront web ACLs live there); elsewhere "
                           "give waf_web_acl_arn")
        web_acl = edge_web_acl(self, "WebAcl", name=f"{config.prefix}-edge", rate_limit=config.waf_rate_limit)
        return web_acl.attr_arn


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(cloud_watch_metrics_enabled=True, metric_name=name,
                                                    sampled_requests_enabled=True)


def edge_web_acl(scope: Construct, construct_id: str, *, name: str, rate_limit: int) -> wafv2.CfnWebACL:
    """The CloudFront web ACL: a rate limit per client IP (one client cannot starve every tenant
    behind the stage-wide throttle), then AWS's common and known-bad-inputs rule sets."""
    managed = [("AWSManagedRulesCommonRuleSet", WAF_COUNTED_COMMON_RULES),
               ("AWSManagedRulesKnownBadInputsRuleSet", ())]
    rules = [wafv2.CfnWebACL.RuleProperty(
        name="RatePerClientIp", priority=0,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
            aggregate_key_type="IP", limit=rate_limit, evaluation_window_sec=300)),
        visibility_config=_visibility(f"{name}-rate-per-ip"))]
    for priority, (group, counted) in enumerate(managed, start=1):
        rules.append(wafv2.CfnWebACL.RuleProperty(
            name=group, priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS", name=group,
                    rule_action_overrides=[wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}))
                        for rule in counted] or None)),
            visibility_config=_visibility(f"{name}-{group}")))
    return wafv2.CfnWebACL(scope, construct_id, name=name, scope="CLOUDFRONT",
                           default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
                           visibility_config=_visibility(name), rules=rules)


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
