"""The catalog's schema: what a function, its trigger, its access, its layers, a queue and
a state machine are. The entries (which functions exist) live in ``functions/catalog/``, one
module per domain; these types live here so that ``shared/`` (the HTTP layer, OpenAPI,
settings) can read an entry it is handed without importing ``functions/``.

Import-light on purpose (no AWS or CDK imports): the HTTP middleware reads a route from it at
cold start.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Literal


@dataclass(frozen=True)
class Layer:
    name: str
    # pip requirements installed into the layer (exact pins from pyproject.toml).
    requirements: tuple[str, ...]
    # Modules a function on this layer necessarily imports: the cold-import baseline
    # that the import benchmark compares each handler against.
    baseline_imports: tuple[str, ...]




# --- Triggers ----------------------------------------------------------------------

# Stratus's own envelope and error shape; compatible API facades name theirs.
DEFAULT_DIALECT = "stratus"


@dataclass(frozen=True)
class Http:
    """An API Gateway HTTP API route (path in OpenAPI form: ``/api/v1/members/{member_id}``)."""

    method: str
    path: str
    # Permission string checked by the shared middleware; None with auth=False only.
    permission: str | None = None
    auth: bool = True
    summary: str = ""
    tag: str = ""
    # The response and error shape (a name the HTTP layer resolves to its ``Dialect``).
    dialect: str = DEFAULT_DIALECT
    # What a client whose body is over the limit should do instead (the 413 says it).
    too_large_hint: str = ""
    # The body's form: JSON, or multipart/form-data (a file upload).
    body: Literal["json", "multipart"] = "json"
    # The largest body this route takes (bytes); None: the ``max_body_bytes`` setting.
    max_body_bytes: int | None = None

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class DefaultRoute:
    """The ``$default`` route: unknown paths and methods, answered in the envelope."""


@dataclass(frozen=True)
class Authorizer:
    """The Lambda REQUEST authorizer of the HTTP API."""

    identity_header: str = "Authorization"


@dataclass(frozen=True)
class Schedule:
    """An EventBridge schedule (``rate(...)`` or ``cron(...)``)."""

    expression: str
    description: str = ""


@dataclass(frozen=True)
class StepFunctionsTask:
    """A Lambda task of a state machine defined in ``STATE_MACHINES``."""

    state_machine: str


@dataclass(frozen=True)
class Invoked:
    """Invoked directly by other functions (Lambda ``Invoke``, RequestResponse), each naming it in
    its access (``invoke(name)``); no route, schedule, queue or state machine triggers it."""


@dataclass(frozen=True)
class Deploy:
    """Invoked by the deployment (a CloudFormation custom resource)."""


@dataclass(frozen=True)
class Queue:
    """Messages of an SQS queue named in ``QUEUES``, delivered in batches; the handler reports
    partial batch failures (``batchItemFailures``), so only failed messages come back."""

    queue: str
    batch_size: int = 5
    max_batching_window_s: int = 0


@dataclass(frozen=True)
class SseEvent:
    """One event type a streaming route sends: its ``event:`` name and the model of its ``data``."""

    type: str
    # "module:Model", like the models of ``StreamRoute``.
    data: str
    description: str = ""


@dataclass(frozen=True)
class StreamRoute:
    """A route of a streaming function: the app serves it (``shared.http.stream``) and OpenAPI
    documents it from this declaration alone.

    Models are "module:Name" strings, imported by the HTTP layer when it first needs them: the
    catalog stays import-light (no pydantic models at cold start)."""

    method: str
    path: str
    permission: str
    summary: str = ""
    tag: str = ""
    # The JSON request body and the query string, validated before the handler runs.
    body: str | None = None
    query: str | None = None
    # The data of the JSON answer (an action like cancel, or a result not streamed) and its status.
    response: str | None = None
    status: int = 200
    # The Server-Sent Events the route answers with; none: it answers JSON only.
    events: tuple[SseEvent, ...] = ()
    dialect: str = DEFAULT_DIALECT
    # The JSON answer is a page of ``response`` items with the list envelope's pagination.
    paged: bool = False
    # The JSON answer may also be 202 with ``Location`` (the work goes on; poll it there).
    accepted: bool = False
    # ``response`` is the whole JSON answer, not the data the dialect's envelope wraps (an API
    # that puts fields beside its data: Coze's workflow run).
    whole_body: bool = False
    # OpenAPI's operationId; None: the function's name and the route's literal segments.
    operation_id: str | None = None

    @property
    def streams(self) -> bool:
        return bool(self.events)


@dataclass(frozen=True)
class FunctionUrl:
    """A Lambda function URL (``InvokeMode: RESPONSE_STREAM``, ``AuthType: NONE``: the app checks
    the bearer token itself) serving the module's ASGI ``app`` under the Lambda Web Adapter.
    CloudFront sends every request whose path is one of ``path_prefixes`` or lies below one to
    it, whatever its method; the local runtime mounts the same app on its gateway at the same
    prefixes (docs/architecture.md §2.4, §3). A prefix is literal (``/api/v1/chat``) or has
    whole-segment parameters (``/api/v1/workflow-runs/{run_id}/events``), which the edge matches
    with ``*`` (docs/adr/0035-workflow-run-streaming.md)."""

    path_prefixes: tuple[str, ...]
    routes: tuple[StreamRoute, ...]
    app: str = "app"

    @property
    def readiness_path(self) -> str:
        """Where the Web Adapter polls the app until it answers (infrastructure, not a user route):
        under the first prefix, its parameters written ``_``."""
        return _PARAMETER.sub("_", self.path_prefixes[0]) + READINESS_SUFFIX

    def owns(self, path: str) -> bool:
        """Whether a request for ``path`` comes to this function (as the local gateway decides)."""
        return any(prefix_pattern(prefix).match(path) for prefix in self.path_prefixes)


READINESS_SUFFIX = "/_ready"
_PARAMETER = re.compile(r"\{\w+\}")


@cache
def prefix_pattern(prefix: str) -> re.Pattern[str]:
    """A request path that is ``prefix`` or lies below it; a ``{parameter}`` is one segment."""
    regex = _PARAMETER.sub("[^/]+", "/".join(re.escape(seg) if not _PARAMETER.fullmatch(seg) else seg
                                           for seg in prefix.split("/")))
    # DOTALL: a path below the prefix may hold any character (an encoded newline too).
    return re.compile(f"^{regex}(?:/.*)?$", re.DOTALL)


def prefix_glob(prefix: str) -> str:
    """The prefix as a CloudFront path pattern: each ``{parameter}`` becomes ``*``."""
    return _PARAMETER.sub("*", prefix)


def under_prefix(path: str, prefix: str) -> bool:
    """Route template ``path`` is ``prefix`` itself or below it (``/api/v1/chat/{id}/events``
    under ``/api/v1/chat``), never a sibling that merely starts with the same characters
    (``/api/v1/chats``). A parameter of the prefix takes any one segment of the path."""
    wanted, segments = prefix.split("/"), path.split("/")
    if len(segments) < len(wanted):
        return False
    return all(want == seg or _PARAMETER.fullmatch(want) is not None for want, seg in zip(wanted, segments,
                                                                                          strict=False))


@dataclass(frozen=True)
class Facade:
    """A compatible API (docs/adr/0042-compatible-api-facades.md): another platform's wire format
    served over Stratus's services under a prefix of its own (``/openai``), so its paths never
    meet ``/api/v1``'s. Every route under the prefix, HTTP API or streaming, answers in the
    facade's dialect, and every route in that dialect lies under the prefix (checked by
    ``infra.topology.validate_facades``); unknown paths under it answer in it too."""

    name: str
    prefix: str
    dialect: str
    # What a client sets as its base URL, below the deployment's (``/openai/v1``).
    base_path: str
    description: str = ""


Trigger = Http | DefaultRoute | Authorizer | Schedule | StepFunctionsTask | Invoked | Deploy | Queue | FunctionUrl

# --- Permissions (IAM), abstract: CDK turns each into grants -----------------------


@dataclass(frozen=True)
class Access:
    # "database", "database_admin", "redis", "bucket:<name>", "state_machine:<name>", "secret:<name>",
    # "function:<name>", ...
    resource: str
    actions: tuple[str, ...] = ()
    # A bucket's grant limited to the keys under this prefix ("": the whole bucket).
    prefix: str = ""

    @property
    def kind(self) -> str:
        return self.resource.partition(":")[0]

    @property
    def name(self) -> str:
        return self.resource.partition(":")[2]


DATABASE = Access("database")
DATABASE_ADMIN = Access("database_admin")
REDIS = Access("redis")


def bucket(name: str, *actions: str, prefix: str = "") -> Access:
    """``read``, ``write``, ``delete``: objects of the bucket (``read`` also lists it), or only
    those whose keys start with ``prefix``."""
    return Access(f"bucket:{name}", actions, prefix)


# What a function may do with a state machine's executions (infra/functions.py turns each
# into IAM actions on that machine's ARN or its executions' ARNs, never a wildcard action).
StateMachineAction = Literal["start", "stop", "describe", "signal"]
STATE_MACHINE_ACTIONS: tuple[StateMachineAction, ...] = ("start", "stop", "describe", "signal")


def state_machine(name: str, *actions: StateMachineAction) -> Access:
    """``start``: start executions; ``stop``: stop them; ``describe``: read an execution and its
    history; ``signal``: answer its task tokens (SendTaskSuccess/Failure/Heartbeat: resuming a
    run paused for human input)."""
    return Access(f"state_machine:{name}", actions)


def secret(name: str) -> Access:
    return Access(f"secret:{name}", ("read",))


def queue(name: str, *actions: str) -> Access:
    """``send``: the function sends messages to the queue (consumers get their grant from the trigger)."""
    return Access(f"queue:{name}", actions)


def invoke(function: str) -> Access:
    """Invoke catalog function ``function`` directly (lambda:InvokeFunction on it alone; its
    name reaches the caller as ``<FUNCTION>_FUNCTION_NAME``). Its trigger must be ``Invoked``."""
    return Access(f"function:{function}", ("invoke",))


# The OpenSearch domain, when the deployment chose it as the vector store.
OPENSEARCH = Access("opensearch", ("read", "write"))

# A state machine's own executions, for its access (StateMachineSpec.access): a Distributed Map
# runs each item as a child execution of the machine, which starts, describes and stops them.
CHILD_EXECUTIONS = Access("child_executions", ("start", "describe", "stop"))


# --- Functions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    name: str
    module: str
    domain: str
    trigger: Trigger
    memory_mb: int = 256
    timeout_s: int = 10
    layers: tuple[str, ...] = ("base",)
    access: tuple[Access, ...] = ()
    # Functions that reach data stores run in the VPC's private subnets.
    in_vpc: bool = True
    description: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"


@dataclass(frozen=True)
class S3Notification:
    """S3 ``ObjectCreated`` events of a bucket (under a key prefix) sent to a queue."""

    bucket: str
    prefix: str = ""


@dataclass(frozen=True)
class QueueSpec:
    name: str
    domain: str
    # Receives after which a message moves to the queue's dead-letter queue.
    max_receive_count: int = 5
    # How long a received message stays invisible: at least the consumer's timeout (AWS
    # recommends six times it); set by the infrastructure from the consumer when None.
    visibility_timeout_s: int | None = None
    s3_notifications: tuple[S3Notification, ...] = ()
    description: str = ""


StateMachineType = Literal["STANDARD", "EXPRESS"]


@dataclass(frozen=True)
class StateMachineSpec:
    name: str
    domain: str
    # "module:function" returning the ASL as a dict, built with shared.stepfunctions.asl, with
    # ``${fn:<function name>}`` placeholders for Lambda ARNs (filled in by CDK and by the local
    # runtime).
    definition: str
    description: str = ""
    # STANDARD: long runs, exactly-once steps, ``.waitForTaskToken``; EXPRESS: short,
    # high-volume, at-least-once, no task tokens (checked when the stacks are built).
    type: StateMachineType = "STANDARD"
    # What the machine itself reaches beyond invoking its Lambda tasks: CHILD_EXECUTIONS for a
    # Distributed Map, ``bucket(name, "read")`` for an S3 item reader.
    access: tuple[Access, ...] = ()
    # The execution's TimeoutSeconds (a stuck execution ends, failed, and its alarm fires).
    # None: 24 hours for STANDARD, 5 minutes (the limit) for EXPRESS (infra/state_machines.py).
    timeout_s: int | None = None


# --- Lookup by name ------------------------------------------------------------------
# The entries live in functions/, which shared/ does not import: the package of entry points
# registers how to find one by name (functions/__init__.py), for the cold-start settings check.
_lookup: Callable[[str], Function] | None = None


def register_lookup(lookup: Callable[[str], Function]) -> None:
    global _lookup
    _lookup = lookup


def registered_entry(name: str) -> Function:
    if _lookup is None:
        raise RuntimeError("no function catalog registered (functions/__init__.py registers it)")
    return _lookup(name)
