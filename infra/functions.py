"""THE function factory: every Lambda function, its permissions and its trigger come from
its catalog entry (functions/catalog/). Nothing here names a particular function."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aws_cdk import (
    ArnFormat,
    Aws,
    CfnParameter,
    Duration,
    NestedStack,
    RemovalPolicy,
    Stack,
    Tags,
    Token,
)
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions import catalog
from functions.catalog import (
    Access,
    Authorizer,
    DefaultRoute,
    Deploy,
    Function,
    FunctionUrl,
    Http,
    Invoked,
    Queue,
    Schedule,
    StepFunctionsTask,
    by_name,
)
from infra import nag
from infra.api import Api
from infra.capacity import function_class
from infra.config import StratusConfig
from infra.data import DATABASE_NAME, KEY_ACTIONS, KEY_USER_TAG_VALUE, Data, key_user_tag
from infra.dependency_layers import ARCHITECTURE, RUNTIME, DependencyLayers
from infra.network import Network
from infra.observability import AlarmTopic, function_alarms
from infra.opensearch import OPENSEARCH_ACTIONS, SIGV4_SERVICE
from infra.packaging import (
    ASGI_APP_ENV,
    LAMBDA_UNZIPPED_LIMIT_BYTES,
    START_SCRIPT,
    WEB_PORT_ENV,
    asgi_target,
    function_package_bytes,
)
from infra.topology import construct_id, env_name, validate_queue_trigger
from shared.config import ORIGIN_SECRET_ARN, access_settings, trigger_settings

if TYPE_CHECKING:
    from infra.state_machines import MachineRef

__all__ = ["Shared", "apply_access", "build_function", "construct_id", "env_name", "grant_bucket_objects",
           "states_arn", "web_adapter_layer_arn", "wire_trigger"]

# Every function carries this tag with its catalog name: how operators (and the tests)
# map a deployed function back to the catalog.
FUNCTION_TAG = "stratus:function"
SERVICE_NAME = "stratus"
METRICS_NAMESPACE = "Stratus"

# Lambda creates and deletes the ENIs of in-VPC functions with the execution role; these
# EC2 actions do not support resource-level permissions.
_ENI_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]

# bucket:<name> actions → (object-level actions, bucket-level actions). Explicit actions,
# never s3:* or the s3:GetObject* families CDK's grants use.
_BUCKET_ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "read": (("s3:GetObject",), ("s3:ListBucket",)),
    "write": (("s3:PutObject", "s3:AbortMultipartUpload"), ()),
    "delete": (("s3:DeleteObject",), ()),
}
# state_machine:<name> actions → (IAM actions on the machine, IAM actions on its executions).
# SendTask* take the task token, not a resource, in the API; IAM checks them against the
# state machine whose task issued the token, so they are scoped to that one machine
# (docs/adr/0029-workflow-interpreter-infrastructure.md).
STATE_MACHINE_ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "start": (("states:StartExecution",), ()),
    "stop": ((), ("states:StopExecution",)),
    "describe": ((), ("states:DescribeExecution", "states:GetExecutionHistory")),
    "signal": (("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"), ()),
}
_QUEUE_ACTIONS = {"send"}
# bedrock "invoke" → the runtime actions. Converse is authorized by bedrock:InvokeModel and
# ConverseStream by bedrock:InvokeModelWithResponseStream (there is no bedrock:Converse action).
BEDROCK_ACTIONS: dict[str, tuple[str, ...]] = {
    "invoke": ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"),
}

# --- The AWS Lambda Web Adapter (function URL functions) ----------------------------------
# github.com/awslabs/aws-lambda-web-adapter: a Lambda extension that runs the function's web
# server and turns each invocation into an HTTP request to it; with
# AWS_LWA_INVOKE_MODE=response_stream it streams the answer back through the function URL.
# AWS publishes it as a public layer from account 753240598075 in every commercial region, one
# per architecture. PINNED: layer version 25 of both; moving is this constant, a deploy and the
# infra tests (docs/adr/0028-chat-edge.md).
WEB_ADAPTER_LAYER_VERSION = 25
WEB_ADAPTER_ACCOUNT = "753240598075"
_WEB_ADAPTER_LAYERS = {"arm64": "LambdaAdapterLayerArm64", "x86_64": "LambdaAdapterLayerX86"}
# Its wrapper script: it runs the handler (the start script) in place of the Python runtime.
WEB_ADAPTER_WRAPPER = "/opt/bootstrap"
WEB_ADAPTER_PORT = 8080

# Pseudo parameters, not the stack's (possibly literal) region and partition: the ARNs, and
# so the cdk-nag finding ids acknowledged for them, read the same whether or not the CLI
# gives the app an environment.
_BEDROCK_ARN = f"arn:{Aws.PARTITION}:bedrock"
# Foundation models in the deployment's region, invoked directly.
BEDROCK_FOUNDATION_MODELS = f"{_BEDROCK_ARN}:{Aws.REGION}::foundation-model/*"
# The account's inference profiles in that region: system-defined (cross-region, e.g.
# us.anthropic...) and application inference profiles.
BEDROCK_INFERENCE_PROFILES = (
    f"{_BEDROCK_ARN}:{Aws.REGION}:{Aws.ACCOUNT_ID}:inference-profile/*",
    f"{_BEDROCK_ARN}:{Aws.REGION}:{Aws.ACCOUNT_ID}:application-inference-profile/*",
)
# A cross-region profile routes to the foundation model in any of its destination regions,
# and IAM checks the model there too; so models in any region, but only when reached
# through one of those profiles (bedrock:InferenceProfileArn is absent on a direct call).
BEDROCK_ROUTED_FOUNDATION_MODELS = f"{_BEDROCK_ARN}:*::foundation-model/*"


@dataclass(frozen=True)
class Shared:
    """What the root stack hands every domain stack."""

    config: StratusConfig
    network: Network
    data: Data
    layers: DependencyLayers
    api: Api
    alarms: AlarmTopic
    code_dir: Path
    params_and_secrets: lambda_.ParamsAndSecretsLayerVersion
    _code: dict[str, lambda_.Code] = field(default_factory=dict)

    def code(self, scope: Construct) -> lambda_.Code:
        """The first-party code asset, one ``Code`` per stack (CDK binds an asset to one
        stack); every stack's copy has the same hash, so it is uploaded once."""
        stack = Stack.of(scope)
        key = stack.node.path
        if key not in self._code:
            self._code[key] = lambda_.Code.from_asset(str(self.code_dir))
        return self._code[key]


def _needs_vpc(access: Access) -> bool:
    return access.resource in {"database", "database_admin", "redis", "opensearch"}


def _validate(fn: Function, shared: Shared) -> None:
    if not fn.in_vpc and any(_needs_vpc(a) for a in fn.access):
        raise ValueError(f"{fn.name}: database, redis and opensearch access need in_vpc=True")
    size = function_package_bytes(fn, shared.code_dir)
    if size >= LAMBDA_UNZIPPED_LIMIT_BYTES:
        raise ValueError(f"{fn.name}: code + layers unzip to {size / 2**20:.0f} MiB, over Lambda's 250 MB")


def web_adapter_layer_arn(architecture: lambda_.Architecture = ARCHITECTURE) -> str:
    """The adapter layer for the functions' architecture, in the deployment's region (the
    layer is published in the ``aws`` partition only)."""
    name = _WEB_ADAPTER_LAYERS[architecture.name]
    return f"arn:aws:lambda:{Aws.REGION}:{WEB_ADAPTER_ACCOUNT}:layer:{name}:{WEB_ADAPTER_LAYER_VERSION}"


def _web_adapter_environment(fn: Function) -> dict[str, str]:
    """A function URL function runs its ASGI app under the adapter (docs/architecture.md §2.4)."""
    assert isinstance(fn.trigger, FunctionUrl)
    return {
        "AWS_LAMBDA_EXEC_WRAPPER": WEB_ADAPTER_WRAPPER,
        "AWS_LWA_INVOKE_MODE": "response_stream",
        WEB_PORT_ENV: str(WEB_ADAPTER_PORT),
        # The adapter polls it until the app answers before taking the first invocation; the
        # app's builder (shared/http/stream.py) answers the same path, from the same entry.
        "AWS_LWA_READINESS_CHECK_PATH": fn.trigger.readiness_path,
        # What the start script (run.sh) serves: <module>:<attribute> from the catalog entry.
        ASGI_APP_ENV: asgi_target(fn),
    }


def _base_environment(fn: Function, config: StratusConfig) -> dict[str, str]:
    return {
        "STRATUS_RUNTIME": "lambda",
        # Which catalog entry this is: the cold-start check reads its required settings.
        "STRATUS_FUNCTION": fn.name,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "LOG_LEVEL": config.log_level,
        # The middleware keeps revocations effective for as long as API Gateway may cache.
        "AUTHORIZER_CACHE_TTL_S": str(config.authorizer_cache_ttl_s),
        # The deployment's egress allow-list, for whichever function calls a tenant URL.
        **({"STRATUS_EGRESS_ALLOW": config.egress_allow} if config.egress_allow else {}),
        **fn.env,
    }


def build_function(scope: Construct, fn: Function, shared: Shared) -> lambda_.Function:
    """One Lambda function (with its role, log group and error alarm) from a catalog entry.
    Access grants and triggers are wired later, once every function and state machine exists."""
    _validate(fn, shared)
    cid = construct_id(fn.name)
    config = shared.config
    log_group = logs.LogGroup(scope, f"{cid}Logs", retention=config.log_retention,
                              removal_policy=RemovalPolicy.DESTROY)
    # One role per function: its permissions are exactly its catalog access.
    role = iam.Role(scope, f"{cid}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                    description=f"Stratus function {fn.name}")
    # Instead of AWSLambdaBasicExecutionRole (logs on every log group): its own group only.
    log_group.grant_write(role)
    vpc_props: dict[str, object] = {}
    if fn.in_vpc:
        role.add_to_policy(iam.PolicyStatement(actions=_ENI_ACTIONS, resources=["*"]))
        vpc_props = {"vpc": shared.network.vpc, "vpc_subnets": shared.network.private_subnets,
                     "security_groups": shared.network.security_groups_for(fn)}
    handler = fn.handler
    environment = _base_environment(fn, config)
    layers = shared.layers.for_function(fn)
    if isinstance(fn.trigger, FunctionUrl):
        # The ASGI app under the Lambda Web Adapter: the handler is the start script, the
        # adapter's layer takes one of the five layer slots (layers.build.attached_layers).
        handler = START_SCRIPT
        environment.update(_web_adapter_environment(fn))
        layers.append(lambda_.LayerVersion.from_layer_version_arn(scope, f"{cid}WebAdapter", web_adapter_layer_arn()))
    function = lambda_.Function(
        scope, cid,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=shared.code(scope),
        layers=layers,
        memory_size=fn.memory_mb,
        timeout=Duration.seconds(fn.timeout_s),
        description=(fn.description or f"Stratus {fn.name}")[:256],
        environment=environment,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        role=role,
        params_and_secrets=shared.params_and_secrets,
        # The function's class budget (infra/capacity.py, docs/adr/0047): a spike of one class
        # cannot take the database's connections (or the account's concurrency) from the rest.
        reserved_concurrent_executions=config.budget.reserved_for(fn),
        **vpc_props,  # type: ignore[arg-type]
    )
    if any(r.variable == ORIGIN_SECRET_ARN for r in trigger_settings(fn)):
        # An edge-facing function checks CloudFront's origin header against this secret.
        function.add_environment(ORIGIN_SECRET_ARN, shared.data.origin_secret.secret_arn)
        shared.data.origin_secret.grant_read(function)
    Tags.of(function).add(FUNCTION_TAG, fn.name)
    nag.function_role_wildcards(role, in_vpc=fn.in_vpc)
    nag.python_runtime(function)
    # Errors, throttles, duration near the timeout: every function, from its entry.
    function_alarms(scope, cid, function, fn, config, shared.alarms)
    return function


# --- Access (catalog ``access`` → env vars + least-privilege grants) ---------------------


def apply_access(function: lambda_.Function, fn: Function, shared: Shared,
                 state_machines: Mapping[str, MachineRef], queues: Mapping[str, sqs.IQueue],
                 functions: Mapping[str, lambda_.IFunction]) -> None:
    """Grant each catalog access and set the settings it implies: exactly the variables
    shared.config maps it to (the same mapping the function checks at cold start)."""
    data = shared.data
    env: dict[str, str] = {}
    for access in fn.access:
        kind, name = access.kind, access.name
        values: dict[str, str] = {}
        if kind == "database":
            values = {"DATABASE_SECRET_ARN": data.app_secret.secret_arn, "DATABASE_HOST": data.proxy.endpoint,
                      "DATABASE_NAME": DATABASE_NAME}
            data.app_secret.grant_read(function)
        elif kind == "database_admin":
            # Migrations log in as the owner (directly to the cluster, whose host is in the
            # owner secret) and set the application role's password from the app secret.
            values = {"DATABASE_ADMIN_SECRET_ARN": data.owner_secret.secret_arn,
                      "DATABASE_SECRET_ARN": data.app_secret.secret_arn, "DATABASE_NAME": DATABASE_NAME}
            data.owner_secret.grant_read(function)
            data.app_secret.grant_read(function)
        elif kind == "redis":
            # Reaching the cache (security group) is not enough: every connection logs in as
            # the application's RBAC user with the password in this secret (docs/adr/0048).
            values = {"REDIS_URL": data.redis_url, "REDIS_USER": data.cache_user.user_name,
                      "REDIS_SECRET_ARN": data.cache_secret.secret_arn}
            data.cache_secret.grant_read(function)
        elif kind == "bucket":
            assert function.role is not None
            values = {env_name(name, "BUCKET"): grant_bucket_objects(function.role, function, fn.name, name,
                                                                     access.actions, data, prefix=access.prefix)}
        elif kind == "state_machine":
            values = {env_name(name, "STATE_MACHINE_ARN"): _grant_state_machine(function, fn, name, access.actions,
                                                                                state_machines)}
        elif kind == "queue":
            values = {env_name(name, "QUEUE_URL"): _grant_queue(function, fn, name, access.actions, queues)}
        elif kind == "opensearch":
            values = _grant_opensearch(function, fn, name, access.actions, shared)
        elif kind == "kms":
            values = {env_name(name, "KMS_KEY_ID"): _grant_key(function, fn, name, access.actions, data)}
        elif kind == "function":
            values = {env_name(name, "FUNCTION_NAME"): _grant_invoke(function, fn, name, access.actions, functions)}
        elif kind == "bedrock":
            _grant_bedrock(function, fn, name, access.actions)
        elif kind == "secret":
            if name not in data.secrets:
                raise ValueError(f"{fn.name}: unknown secret {name!r}; known: {sorted(data.secrets)}")
            if set(access.actions) - {"read"}:
                raise ValueError(f"{fn.name}: secrets are read-only, got {access.actions}")
            values = {env_name(name, "SECRET_ARN"): data.secrets[name].secret_arn}
            data.secrets[name].grant_read(function)
        else:
            raise ValueError(f"{fn.name}: unknown access {access.resource!r}")
        _check_mapped(fn, access, values)
        env.update(values)
    for variable, value in env.items():
        function.add_environment(variable, value)


def _check_mapped(fn: Function, access: Access, values: Mapping[str, str]) -> None:
    """The variables set for ``access`` are exactly those shared.config maps it to (a variable
    it does not map would go unchecked at cold start; one it maps but CDK does not set would
    fail every cold start)."""
    mapped = access_settings(access)
    unmapped = sorted(set(values) - {r.variable for r in mapped})
    if unmapped:
        raise ValueError(f"{fn.name}: access {access.resource!r} sets {unmapped}, which shared.config does not map")
    missing = [r.variable for r in mapped
               if r.variable not in values and (r.when is None or values.get(r.when[0].upper()) == r.when[1])]
    if missing:
        raise ValueError(f"{fn.name}: access {access.resource!r} requires {missing}, which CDK does not set")


def grant_bucket_objects(role: iam.IRole, scope: Construct, who: str, name: str, actions: tuple[str, ...],
                         data: Data, *, prefix: str = "") -> str:
    """``bucket:<name>`` for a function's (or a state machine's) role: exactly the catalog's
    actions on that bucket's objects (and ListBucket for ``read``), or on the objects under
    ``prefix`` only (ListBucket then conditioned on it). Returns the bucket's name."""
    if name not in data.buckets:
        raise ValueError(f"{who}: unknown bucket {name!r}; known: {sorted(data.buckets)}")
    unknown = set(actions) - set(_BUCKET_ACTIONS)
    if unknown or not actions:
        raise ValueError(f"{who}: bucket actions must be among {sorted(_BUCKET_ACTIONS)}, got {actions}")
    bucket = data.buckets[name]
    object_actions = sorted({a for action in actions for a in _BUCKET_ACTIONS[action][0]})
    bucket_actions = sorted({a for action in actions for a in _BUCKET_ACTIONS[action][1]})
    # The bucket ARN enters the nested stack as a parameter we name, so the object
    # resource reads <UploadsBucketArn>/* and its cdk-nag finding can be acknowledged by
    # its exact id (CDK's generated cross-stack parameter names are not stable).
    bucket_arn, param_id = _stack_parameter(scope, f"{construct_id(name)}BucketArn", bucket.bucket_arn)
    role.add_to_principal_policy(iam.PolicyStatement(actions=object_actions, resources=[f"{bucket_arn}/{prefix}*"]))
    if bucket_actions:
        conditions = {"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None
        role.add_to_principal_policy(iam.PolicyStatement(actions=bucket_actions, resources=[bucket_arn],
                                                         conditions=conditions))
    nag.bucket_objects(role, f"<{param_id}>/{prefix}*", name, object_actions)
    return bucket.bucket_name


def _grant_key(function: lambda_.Function, fn: Function, name: str, actions: tuple[str, ...], data: Data) -> str:
    """``kms:<name>``: exactly the catalog's actions on the one key, with its encryption
    context required, plus the role tag its key policy admits (infra/data.py)."""
    if name not in data.keys:
        raise ValueError(f"{fn.name}: unknown key {name!r}; known: {sorted(data.keys)}")
    unknown = set(actions) - set(KEY_ACTIONS)
    if unknown or not actions:
        raise ValueError(f"{fn.name}: key actions must be among {sorted(KEY_ACTIONS)}, got {actions}")
    customer_key = data.keys[name]
    conditions = {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": list(customer_key.context_keys)}}
    function.add_to_role_policy(iam.PolicyStatement(
        actions=sorted({KEY_ACTIONS[action] for action in actions}),
        resources=[customer_key.key.key_arn],
        conditions=conditions,
    ))
    assert function.role is not None
    Tags.of(function.role).add(key_user_tag(name), KEY_USER_TAG_VALUE)
    # The code takes a key id or ARN; the ARN names the key unambiguously.
    return customer_key.key.key_arn


def _grant_bedrock(function: lambda_.Function, fn: Function, name: str, actions: tuple[str, ...]) -> None:
    """``bedrock``: model invocation (Converse, ConverseStream, InvokeModel) on foundation
    models and the account's inference profiles in this region."""
    if name:
        raise ValueError(f"{fn.name}: bedrock access takes no resource name, got {name!r}")
    unknown = set(actions) - set(BEDROCK_ACTIONS)
    if unknown or not actions:
        raise ValueError(f"{fn.name}: bedrock actions must be among {sorted(BEDROCK_ACTIONS)}, got {actions}")
    granted = sorted({a for action in actions for a in BEDROCK_ACTIONS[action]})
    function.add_to_role_policy(iam.PolicyStatement(
        actions=granted, resources=[BEDROCK_FOUNDATION_MODELS, *BEDROCK_INFERENCE_PROFILES]))
    function.add_to_role_policy(iam.PolicyStatement(
        actions=granted, resources=[BEDROCK_ROUTED_FOUNDATION_MODELS],
        conditions={"StringLike": {"bedrock:InferenceProfileArn": list(BEDROCK_INFERENCE_PROFILES)}}))
    assert function.role is not None
    nag.bedrock_models(function.role, granted, foundation_models=BEDROCK_FOUNDATION_MODELS,
                       inference_profiles=BEDROCK_INFERENCE_PROFILES,
                       routed_foundation_models=BEDROCK_ROUTED_FOUNDATION_MODELS)


def _grant_invoke(function: lambda_.Function, fn: Function, name: str, actions: tuple[str, ...],
                  functions: Mapping[str, lambda_.IFunction]) -> str:
    """``function:<name>`` with ``invoke``: lambda:InvokeFunction on that one function's ARN
    (unqualified: no ``:*`` for versions and aliases, which the platform does not publish).
    Returns its name."""
    target = by_name().get(name)
    if target is None or name not in functions:
        raise ValueError(f"{fn.name}: unknown function {name!r} to invoke")
    if not isinstance(target.trigger, Invoked):
        raise ValueError(f"{fn.name}: {name} is not invoked directly (its trigger is not Invoked)")
    if tuple(actions) != ("invoke",):
        raise ValueError(f"{fn.name}: function access takes only the invoke action, got {actions}")
    callee = functions[name]
    function.add_to_role_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"],
                                                    resources=[callee.function_arn]))
    return callee.function_name


def _stack_parameter(scope: Construct, param_id: str, value: str) -> tuple[str, str]:
    """A parameter of the nested stack holding ``scope``, set to ``value`` by the parent."""
    stack = Stack.of(scope)
    if not isinstance(stack, NestedStack):
        return value, param_id
    param = stack.node.try_find_child(param_id)
    if param is None:
        param = CfnParameter(stack, param_id, type="String")
        stack.set_parameter(param_id, value)
    assert isinstance(param, CfnParameter)
    return param.value_as_string, param_id


def _grant_state_machine(function: lambda_.Function, fn: Function, name: str, actions: tuple[str, ...],
                         state_machines: Mapping[str, MachineRef]) -> str:
    """``state_machine:<name>``: exactly the catalog's actions, on that machine's ARN (start,
    signal) or its executions' ARNs (stop, describe); never another machine. Returns its ARN."""
    if name not in state_machines:
        raise ValueError(f"{fn.name}: unknown state machine {name!r}; known: {sorted(state_machines)}")
    unknown = set(actions) - set(STATE_MACHINE_ACTIONS)
    if unknown or not actions:
        raise ValueError(f"{fn.name}: state machine actions must be among {sorted(STATE_MACHINE_ACTIONS)}, "
                         f"got {actions}")
    ref = state_machines[name]
    on_machine = sorted({a for action in actions for a in STATE_MACHINE_ACTIONS[action][0]})
    on_executions = sorted({a for action in actions for a in STATE_MACHINE_ACTIONS[action][1]})
    if on_machine:
        function.add_to_role_policy(iam.PolicyStatement(actions=on_machine, resources=[ref.arn]))
    if on_executions:
        machine_name = ref.name
        if Token.is_unresolved(machine_name):
            # Another stack's machine: its name enters as a parameter we name, so the finding id
            # acknowledged below is stable (CDK's generated cross-stack names are not).
            machine_name, _ = _stack_parameter(function, f"{construct_id(name)}StateMachineName", machine_name)
        executions = states_arn(function, "execution", f"{machine_name}:*")
        function.add_to_role_policy(iam.PolicyStatement(actions=on_executions, resources=[executions]))
        assert function.role is not None
        nag.executions(function.role, nag.rendered(function, executions), on_executions, name)
    return ref.arn


def states_arn(scope: Construct, resource: str, resource_name: str) -> str:
    """``arn:<partition>:states:<region>:<account>:<resource>:<resource_name>``, with pseudo
    parameters rather than the stack's (possibly literal) region and account: the ARNs, and so
    the cdk-nag finding ids acknowledged for them, read the same in every environment."""
    return Stack.of(scope).format_arn(service="states", resource=resource, resource_name=resource_name,
                                      arn_format=ArnFormat.COLON_RESOURCE_NAME, region=Aws.REGION,
                                      account=Aws.ACCOUNT_ID, partition=Aws.PARTITION)


def _grant_queue(function: lambda_.Function, fn: Function, name: str, actions: tuple[str, ...],
                 queues: Mapping[str, sqs.IQueue]) -> str:
    """``queue:<name>`` with ``send``: SendMessage on the one queue and its URL. (A queue's
    consumer gets its rights from its Queue trigger's event source.)"""
    if name not in queues:
        raise ValueError(f"{fn.name}: unknown queue {name!r}; known: {sorted(queues)}")
    unknown = set(actions) - _QUEUE_ACTIONS
    if unknown or not actions:
        raise ValueError(f"{fn.name}: queue actions must be among {sorted(_QUEUE_ACTIONS)}, got {actions}")
    queue = queues[name]
    queue.grant_send_messages(function)
    return queue.queue_url


def _grant_opensearch(function: lambda_.Function, fn: Function, name: str, actions: tuple[str, ...],
                      shared: Shared) -> dict[str, str]:
    """``opensearch``: with the deployment's OpenSearch domain, the HTTP actions on its paths
    (IAM here, and the domain's access policy names the role); with PostgreSQL as the vector
    store (the default), only the setting that says so."""
    if name:
        raise ValueError(f"{fn.name}: opensearch access takes no resource name, got {name!r}")
    unknown = set(actions) - set(OPENSEARCH_ACTIONS)
    if unknown or not actions:
        raise ValueError(f"{fn.name}: opensearch actions must be among {sorted(OPENSEARCH_ACTIONS)}, got {actions}")
    search = shared.data.opensearch
    if search is None:
        return {"VECTOR_STORE": "postgres"}
    granted = sorted({a for action in actions for a in OPENSEARCH_ACTIONS[action]})
    # The domain ARN enters the nested stack as a parameter we name, so the resource reads
    # <OpenSearchDomainArn>/* and its cdk-nag finding has a stable id.
    domain_arn, param_id = _stack_parameter(function, "OpenSearchDomainArn", search.domain.domain_arn)
    function.add_to_role_policy(iam.PolicyStatement(actions=granted, resources=[f"{domain_arn}/*"]))
    assert function.role is not None
    search.admit(function.role)
    nag.opensearch_paths(function.role, f"<{param_id}>/*", granted)
    return {"VECTOR_STORE": "opensearch", "OPENSEARCH_URL": search.url, "OPENSEARCH_SIGV4_SERVICE": SIGV4_SERVICE}


# --- Triggers ------------------------------------------------------------------------


def wire_trigger(scope: Construct, function: lambda_.Function, fn: Function, shared: Shared, *,
                 authorizer: apigwv2.IHttpRouteAuthorizer | None,
                 state_machine_tasks: Mapping[str, set[str]],
                 queues: Mapping[str, sqs.IQueue]) -> lambda_.FunctionUrl | None:
    """Attach ``fn``'s trigger. The ``Authorizer`` trigger is made by ``add_request_authorizer``.
    Returns the function URL of a ``FunctionUrl`` trigger (the edge's origin for its paths)."""
    cid = construct_id(fn.name)
    trigger = fn.trigger
    if isinstance(trigger, Http):
        if trigger.auth and authorizer is None:
            raise ValueError(f"{fn.name}: route needs the authorizer, but the catalog has no Authorizer entry")
        shared.api.count_route()
        route = apigwv2.HttpRoute(
            scope, f"{cid}Route",
            http_api=shared.api.http_api,
            route_key=apigwv2.HttpRouteKey.with_(trigger.path, apigwv2.HttpMethod(trigger.method.upper())),
            integration=integrations.HttpLambdaIntegration(f"{cid}Integration", function),
            # Public routes say so explicitly, so a default authorizer added later cannot
            # silently change them.
            authorizer=authorizer if trigger.auth else apigwv2.HttpNoneAuthorizer(),
        )
        if not trigger.auth:
            nag.public_route(route, trigger.route_key)
    elif isinstance(trigger, DefaultRoute):
        shared.api.count_route()
        route = apigwv2.HttpRoute(
            scope, f"{cid}Route",
            http_api=shared.api.http_api,
            route_key=apigwv2.HttpRouteKey.DEFAULT,
            integration=integrations.HttpLambdaIntegration(f"{cid}Integration", function),
            # Unknown paths answer 404/405 in the envelope whether or not a token came
            # with them; an authorizer would only turn them into 401s.
            authorizer=apigwv2.HttpNoneAuthorizer(),
        )
        nag.public_route(route, "$default")
    elif isinstance(trigger, Authorizer):
        pass
    elif isinstance(trigger, Schedule):
        from infra.queues import event_targets_dlq

        events.Rule(
            scope, f"{cid}Schedule",
            schedule=events.Schedule.expression(trigger.expression),
            description=(trigger.description or f"Runs {fn.name}")[:512],
            targets=[targets.LambdaFunction(function, retry_attempts=2, max_event_age=Duration.hours(1),
                                            dead_letter_queue=event_targets_dlq(scope, shared))],
        )
    elif isinstance(trigger, StepFunctionsTask):
        # The invoke grant is made with the state machine (infra/state_machines.py); here
        # we only refuse a catalog entry its state machine never calls.
        if fn.name not in state_machine_tasks.get(trigger.state_machine, set()):
            raise ValueError(f"{fn.name}: state machine {trigger.state_machine!r} does not reference "
                             f"${{fn:{fn.name}}}")
    elif isinstance(trigger, Invoked):
        # The callers' grants come with their access (``invoke``); here we only refuse an
        # entry nothing may invoke.
        if not any(access.resource == f"function:{fn.name}" for other in catalog.FUNCTIONS
                   for access in other.access):
            raise ValueError(f"{fn.name}: no catalog entry has invoke({fn.name!r}) access, so nothing can call it")
    elif isinstance(trigger, Deploy):
        _deploy_custom_resource(scope, cid, function, fn, shared)
    elif isinstance(trigger, Queue):
        validate_queue_trigger(fn)
        # Batches from the queue; the handler answers batchItemFailures, so only the failed
        # messages come back (after the visibility timeout) and, after the queue's
        # max_receive_count, go to its dead-letter queue.
        window = trigger.max_batching_window_s
        function.add_event_source(event_sources.SqsEventSource(
            queues[trigger.queue],
            batch_size=trigger.batch_size,
            max_batching_window=Duration.seconds(window) if window else None,
            report_batch_item_failures=True,
            # The poller never invokes past the class budget: beyond it messages wait in the
            # queue instead of being throttled back (and counted as receives toward the DLQ).
            max_concurrency=queue_max_concurrency(fn, shared.config),
        ))
    elif isinstance(trigger, FunctionUrl):
        # Streaming (SSE) answers need RESPONSE_STREAM. AuthType NONE: API Gateway's
        # authorizer is not in this path, so the app authenticates every request itself with
        # the same shared code (bearer token, revocation, permission of the StreamRoute).
        url = function.add_function_url(auth_type=lambda_.FunctionUrlAuthType.NONE,
                                        invoke_mode=lambda_.InvokeMode.RESPONSE_STREAM)
        nag.public_function_url(url, fn.name)
        return url
    else:  # pragma: no cover - the catalog's Trigger union is closed
        raise TypeError(f"{fn.name}: unsupported trigger {trigger!r}")
    return None


def queue_max_concurrency(fn: Function, config: StratusConfig) -> int | None:
    """The event source's MaximumConcurrency: the function's reserved concurrency (SQS allows 2 to
    1000; AWS advises reserved concurrency at least this)."""
    reserved = config.budget.reserved_for(fn)
    if reserved is None:
        return None
    if reserved < 2:
        raise ValueError(f"{fn.name}: a queue consumer ({function_class(fn)}) needs reserved concurrency of at "
                         "least 2 (the event source's MaximumConcurrency minimum)")
    return min(reserved, 1000)


def _deploy_custom_resource(scope: Construct, cid: str, function: lambda_.Function, fn: Function,
                            shared: Shared) -> None:
    # The migration custom resource (onEvent + isComplete waiter): infra/migrations.py.
    from infra.migrations import migration_resource

    migration_resource(scope, cid, function, fn, shared)
