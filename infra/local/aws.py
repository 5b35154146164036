"""The local runtime's AWS: moto served on loopback by a thread of this process.

boto3 everywhere in the process (the functions' own clients included) is pointed at it
with ``AWS_ENDPOINT_URL``, so the handlers run the same code paths as in AWS, and
presigned URLs work for clients outside the process. Step Functions executions run, and
their Lambda tasks (like direct ``lambda.invoke`` calls) run the catalog's handlers in
this process (:mod:`infra.local.lambda_hook`). The resources the platform uses are
provisioned from the function catalog at start (functions, state machines, buckets, queues
with their dead-letter queues and S3 notifications), and S3 objects are mirrored to disk
(:mod:`infra.local.s3_mirror`), because moto keeps everything in memory. The queues' consumers
are fed by :mod:`infra.local.queues`.

moto is pinned exactly; the private surfaces used are listed in
docs/adr/0003-moto-local-aws.md.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from xml.sax.saxutils import escape

from functions.catalog import FUNCTIONS, QUEUES, STATE_MACHINES, queue_by_name
from infra.local.invoker import LocalInvoker
from infra.local.lambda_hook import install_lambda_hook, uninstall_lambda_hook
from infra.local.s3_mirror import S3Mirror
from infra.topology import DLQ_RETENTION_DAYS, env_name, visibility_timeout_s
from shared.stepfunctions.definitions import load_definition, render_definition

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

REGION = "us-east-1"
# The buckets the platform uses (production names them per stage in CDK).
UPLOADS_BUCKET = "stratus-uploads"
PAYLOADS_BUCKET = "stratus-payloads"
# Catalog bucket name (bucket("uploads", ...), S3Notification("uploads", ...)) → local bucket.
BUCKET_NAMES = {"uploads": UPLOADS_BUCKET, "payloads": PAYLOADS_BUCKET}
BUCKETS = tuple(BUCKET_NAMES.values())
# A received message reappears after the queue's visibility timeout. In AWS that is six times
# the consumer's timeout (an hour and a half for documents-ingest), so that a throttled
# invocation is never redelivered while it may still run; locally one poller runs one batch
# at a time, so a failed message comes back after this instead.
LOCAL_VISIBILITY_TIMEOUT_S = 30
EXECUTION_ROLE = "stratus-local-execution"
# Lambda needs code to create a function; the hook runs the catalog's handler instead.
_PLACEHOLDER_SOURCE = "def handler(event, context):\n    raise RuntimeError('run by the local runtime')\n"
_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def queue_name(name: str) -> str:
    """The local SQS queue of catalog queue ``name`` (AWS names them per stage, in CDK)."""
    return f"stratus-{name}"


def dlq_name(name: str) -> str:
    return f"stratus-{name}-dlq"


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", _PLACEHOLDER_SOURCE)
    return buffer.getvalue()


def _post_json(url: str, payload: dict[str, Any]) -> None:
    # The URL is always the loopback moto server this module started (http only).
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, json.dumps(payload).encode(), headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


# --- POST policy -------------------------------------------------------------------------
# moto stores a browser-form (presigned POST) upload without checking its policy, so a
# client that sends too large a file or a forbidden key would work locally and fail in AWS.
# This middleware checks the policy's expiry, conditions and content-length-range as S3
# does, before moto sees the request. Signatures are not checked: moto checks none, and
# the local credentials are dummies anyway.

# Form fields S3 does not require the policy to mention.
_POLICY_EXEMPT = frozenset({"awsaccesskeyid", "signature", "x-amz-signature", "file", "policy"})


class S3PolicyError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def xml(self) -> bytes:
        parts = [f"<Code>{escape(self.code)}</Code>", f"<Message>{escape(self.message)}</Message>"]
        parts += [f"<{name}>{escape(value)}</{name}>" for name, value in self.extra.items()]
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{"".join(parts)}</Error>'.encode()


def _condition_failed(condition: Any) -> S3PolicyError:
    return S3PolicyError(403, "AccessDenied",
                         f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}")


def check_post_policy(fields: dict[str, str], bucket: str, file_size: int, now: datetime) -> None:
    """Raise S3PolicyError where S3 would refuse this form upload. ``fields`` are the form
    fields with lower-cased names (the file excluded)."""
    if "policy" not in fields:
        return  # an anonymous upload: the bucket policy decides, not checked locally
    try:
        policy = json.loads(base64.b64decode(fields["policy"], validate=True))
        conditions = policy["conditions"]
        expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        if not isinstance(conditions, list):
            raise TypeError("conditions must be a list")
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise S3PolicyError(400, "InvalidPolicyDocument", f"Invalid Policy: {exc}") from exc
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    if expiration < now:
        raise S3PolicyError(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = dict(fields, bucket=bucket)
    covered: set[str] = set()
    for condition in conditions:
        if isinstance(condition, dict):
            for name, expected in condition.items():
                covered.add(name.lower())
                if values.get(name.lower()) != expected:
                    raise _condition_failed(condition)
        elif isinstance(condition, list) and len(condition) == 3 and isinstance(condition[0], str):
            operator = condition[0].lower()
            if operator == "content-length-range":
                try:
                    low, high = int(condition[1]), int(condition[2])
                except (TypeError, ValueError) as exc:
                    raise S3PolicyError(400, "InvalidPolicyDocument",
                                        f"Invalid Policy: Invalid content-length-range: {exc}") from exc
                if file_size > high:
                    raise S3PolicyError(400, "EntityTooLarge",
                                        "Your proposed upload exceeds the maximum allowed size",
                                        ProposedSize=str(file_size), MaxSizeAllowed=str(high))
                if file_size < low:
                    raise S3PolicyError(400, "EntityTooSmall",
                                        "Your proposed upload is smaller than the minimum allowed size",
                                        ProposedSize=str(file_size), MinSizeAllowed=str(low))
            elif operator in ("eq", "starts-with") and str(condition[1]).startswith("$"):
                name = str(condition[1])[1:].lower()
                covered.add(name)
                value = values.get(name, "")
                ok = value == condition[2] if operator == "eq" else value.startswith(str(condition[2]))
                if not ok:
                    raise _condition_failed(condition)
            else:
                raise S3PolicyError(400, "InvalidPolicyDocument",
                                    f"Invalid Policy: Invalid Condition: {json.dumps(condition)}")
        else:
            raise S3PolicyError(400, "InvalidPolicyDocument",
                                f"Invalid Policy: Invalid Condition: {json.dumps(condition)}")
    extra = sorted(name for name in fields
                   if name not in covered and name not in _POLICY_EXEMPT and not name.startswith("x-ignore-"))
    if extra:
        raise S3PolicyError(403, "AccessDenied",
                            f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")


def _bucket_of(environ: WSGIEnvironment) -> str:
    path = str(environ.get("PATH_INFO", "")).strip("/")
    if path:
        return path.split("/", 1)[0]
    # Virtual-hosted style: bucket.s3.amazonaws.com, bucket.localhost:4566.
    host = str(environ.get("HTTP_HOST", "")).split(":", 1)[0]
    labels = host.split(".")
    return labels[0] if len(labels) > 1 and not host.replace(".", "").isdigit() else ""


class PostPolicyMiddleware:
    """WSGI middleware in front of moto: refuses browser-form uploads as S3 would."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        content_type = str(environ.get("CONTENT_TYPE", ""))
        if environ.get("REQUEST_METHOD") != "POST" or not content_type.startswith("multipart/form-data"):
            return self._app(environ, start_response)
        from werkzeug.formparser import parse_form_data
        from werkzeug.wrappers import Response
        from werkzeug.wsgi import get_input_stream

        body = get_input_stream(environ).read()
        # Parse a copy; moto then reads the same bytes from a fresh stream.
        probe = dict(environ)
        probe["wsgi.input"] = io.BytesIO(body)
        probe["CONTENT_LENGTH"] = str(len(body))
        _, form, files = parse_form_data(probe)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        fields = {name.lower(): value for name, value in form.items() if name.lower() != "file"}
        upload = files.get("file")
        if upload is not None:
            upload.stream.seek(0, io.SEEK_END)
            size = upload.stream.tell()
        else:
            size = len(form.get("file", "").encode())
        try:
            check_post_policy(fields, _bucket_of(environ), size, datetime.now(UTC))
        except S3PolicyError as exc:
            response = Response(exc.xml(), status=exc.status, content_type="application/xml")
            return response(environ, start_response)
        return self._app(environ, start_response)


# --- The runtime's AWS -----------------------------------------------------------------


class LocalAws:
    def __init__(self, state_dir: Path, invoker: LocalInvoker, port: int = 0,
                 queue_visibility_timeout_s: int | None = LOCAL_VISIBILITY_TIMEOUT_S) -> None:
        """``queue_visibility_timeout_s`` caps the queues' visibility timeout (None: as in AWS)."""
        self._state_dir = state_dir
        self._invoker = invoker
        self._port = port
        self._visibility_cap = queue_visibility_timeout_s
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_moto_config: dict[str, Any] = {}
        self._function_arns: dict[str, str] = {}
        self._state_machine_arns: dict[str, str] = {}
        # Catalog queue name → (queue URL, queue ARN, dead-letter queue URL).
        self._queues: dict[str, tuple[str, str, str]] = {}
        self.mirror: S3Mirror | None = None

    @property
    def port(self) -> int:
        """The port moto serves on (the one the OS picked when asked for 0)."""
        if self._server is None:
            raise RuntimeError("LocalAws is not started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalAws is not started")
        return f"http://127.0.0.1:{self._port}"

    def function_arn(self, name: str) -> str:
        try:
            return self._function_arns[name]
        except KeyError:
            raise LookupError(f"no provisioned function named {name!r}") from None

    def state_machine_arn(self, name: str) -> str:
        try:
            return self._state_machine_arns[name]
        except KeyError:
            raise LookupError(f"no provisioned state machine named {name!r}") from None

    def queue_url(self, name: str) -> str:
        return self._queue(name)[0]

    def queue_arn(self, name: str) -> str:
        return self._queue(name)[1]

    def dead_letter_queue_url(self, name: str) -> str:
        return self._queue(name)[2]

    def _queue(self, name: str) -> tuple[str, str, str]:
        try:
            return self._queues[name]
        except KeyError:
            raise LookupError(f"no provisioned queue named {name!r}") from None

    def local_visibility_timeout_s(self, name: str) -> int:
        """The visibility timeout of catalog queue ``name`` here: AWS's, capped for local speed."""
        aws_value = visibility_timeout_s(queue_by_name(name))
        return aws_value if self._visibility_cap is None else max(1, min(aws_value, self._visibility_cap))

    def client(self, service: str) -> Any:
        """A boto3 client for this server (the runtime's own; functions use shared.aws)."""
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION,
                            config=Config(connect_timeout=5, read_timeout=60,
                                          retries={"max_attempts": 3, "mode": "standard"}))

    def _set_env(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def start(self) -> None:
        if self._server is not None:
            return
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request at INFO; the runtime's own logs say what matters.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # moto's interpreter logs each failed state at ERROR with a repr of the whole state
        # machine (kilobytes per line). The failure itself is in the execution's status and
        # history, and a failing Lambda task is logged with its stack by the hook.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        server.start()
        self._server = server
        try:
            self._start_on(server)
        except BaseException:
            # Leave nothing half-started: no server thread, no hook, the environment as it was.
            self.stop()
            raise

    def _start_on(self, server: Any) -> None:
        from moto.core.config import default_user_config

        # Port 0 lets the OS pick a free port without a check-then-bind race.
        self._port = int(server.get_host_and_port()[1])
        # ThreadedMotoServer builds its WSGI app inside its thread; werkzeug reads the
        # server's `app` per request, so wrapping it now covers every request.
        wsgi_server = server._server
        assert wsgi_server is not None
        wsgi_server.app = PostPolicyMiddleware(wsgi_server.app)

        self._set_env("AWS_ENDPOINT_URL", self.endpoint_url)
        # moto's Step Functions interpreter calls Lambda at http://localhost:$MOTO_PORT.
        self._set_env("MOTO_PORT", str(self._port))
        self._set_env("AWS_DEFAULT_REGION", REGION)
        for name, value in _DUMMY_CREDENTIALS.items():
            if not os.environ.get(name):
                self._set_env(name, value)

        config = cast(dict[str, Any], default_user_config)
        self._saved_moto_config = {name: dict(config.get(name, {}))
                                   for name in ("batch", "lambda", "stepfunctions")}
        _post_json(f"{self.endpoint_url}/moto-api/config",
                   {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        install_lambda_hook(self._invoker)
        self._provision()

        # What CDK sets from the catalog's access (infra/functions.py), under the same names.
        for catalog_name, bucket in BUCKET_NAMES.items():
            self._set_env(env_name(catalog_name, "BUCKET"), bucket)
        for name, arn in self._state_machine_arns.items():
            self._set_env(env_name(name, "STATE_MACHINE_ARN"), arn)
        for name, (url, _, _) in self._queues.items():
            self._set_env(env_name(name, "QUEUE_URL"), url)
        self._reset_process_caches()

        self.mirror = S3Mirror(self._state_dir / "s3", self.client("s3"))
        restored = self.mirror.restore()
        # After the restore: objects put back from the mirror were indexed (or marked failed by
        # the reconciler) in an earlier run, and must not be ingested again.
        self._configure_notifications()
        self.mirror.start()
        logger.info("local AWS on %s: %d functions, %d state machines, %d queues, %d S3 objects restored",
                    self.endpoint_url, len(self._function_arns), len(self._state_machine_arns), len(self._queues),
                    restored)

    def _provision(self) -> None:
        iam = self.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
        }]}
        role_arn = iam.create_role(RoleName=EXECUTION_ROLE,
                                   AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        lambda_client = self.client("lambda")
        code = _placeholder_zip()
        for fn in FUNCTIONS:
            # The ARN must exist for Step Functions tasks and lambda.invoke; the code in it
            # never runs (the hook runs the catalog's handler).
            created = lambda_client.create_function(
                FunctionName=fn.name, Runtime="python3.12", Role=role_arn, Handler=fn.handler,
                Code={"ZipFile": code}, Timeout=fn.timeout_s, MemorySize=fn.memory_mb,
                Description=fn.description[:256])
            self._function_arns[fn.name] = created["FunctionArn"]
        sfn = self.client("stepfunctions")
        for spec in STATE_MACHINES:
            created = sfn.create_state_machine(
                name=spec.name, definition=render_definition(load_definition(spec), self._function_arns),
                roleArn=role_arn, type=spec.type)
            self._state_machine_arns[spec.name] = created["stateMachineArn"]
        s3 = self.client("s3")
        for bucket in BUCKETS:
            s3.create_bucket(Bucket=bucket)
        self._provision_queues()
        self._set_env("CREDENTIALS_KMS_KEY_ID", self._credentials_key())

    def _provision_queues(self) -> None:
        """Each catalog queue with its dead-letter queue (14 days, the catalog's
        max_receive_count), as infra/queues.py makes them; moto moves a message to the DLQ on
        the receive after its max_receive_count-th, as SQS does."""
        sqs = self.client("sqs")
        for spec in QUEUES:
            dlq_url = sqs.create_queue(QueueName=dlq_name(spec.name), Attributes={
                "MessageRetentionPeriod": str(DLQ_RETENTION_DAYS * 86400)})["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            url = sqs.create_queue(QueueName=queue_name(spec.name), Attributes={
                "VisibilityTimeout": str(self.local_visibility_timeout_s(spec.name)),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                             "maxReceiveCount": spec.max_receive_count}),
            })["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self._queues[spec.name] = (url, arn, dlq_url)

    def _configure_notifications(self) -> None:
        """The catalog's S3 → SQS notifications (ObjectCreated under a prefix). S3 (and moto)
        then sends each queue an ``s3:TestEvent`` message, which its consumer receives as in AWS."""
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        for spec in QUEUES:
            for notification in spec.s3_notifications:
                if notification.bucket not in BUCKET_NAMES:
                    raise ValueError(f"queue {spec.name!r}: unknown bucket {notification.bucket!r}")
                configuration: dict[str, Any] = {"QueueArn": self.queue_arn(spec.name),
                                                 "Events": ["s3:ObjectCreated:*"]}
                if notification.prefix:
                    configuration["Filter"] = {"Key": {"FilterRules": [
                        {"Name": "prefix", "Value": notification.prefix}]}}
                by_bucket.setdefault(BUCKET_NAMES[notification.bucket], []).append(configuration)
        s3 = self.client("s3")
        for bucket, configurations in by_bucket.items():
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configurations})

    def _credentials_key(self) -> str:
        """The KMS key that encrypts tenants' provider credentials. moto keeps keys in
        memory with fresh material each start, which would make every stored credential
        undecryptable after a restart: the key's id and material are kept in the state dir
        (0600) and put back into moto's backend (a private structure; moto is pinned)."""
        import base64

        from moto.kms.models import kms_backends

        kms = self.client("kms")
        created = kms.create_key(Description="Stratus tenant provider credentials (local)")["KeyMetadata"]
        backend = kms_backends[created["AWSAccountId"]][created["Arn"].split(":")[3]]
        saved_path = self._state_dir / "kms-credentials-key.json"
        if saved_path.exists():
            saved = json.loads(saved_path.read_text())
            key = backend.keys.pop(created["KeyId"])
            key.arn = key.arn.replace(created["KeyId"], saved["key_id"])
            key.id = saved["key_id"]
            key.key_material = base64.b64decode(saved["material"])
            backend.keys[key.id] = key
            return str(key.id)
        key = backend.keys[created["KeyId"]]
        saved_path.write_text(json.dumps({"key_id": key.id,
                                          "material": base64.b64encode(key.key_material).decode()}))
        saved_path.chmod(0o600)
        return str(key.id)

    def sync_s3(self) -> tuple[int, int]:
        """Mirror S3 to disk now; returns (written, deleted)."""
        if self.mirror is None:
            raise RuntimeError("LocalAws is not started")
        return self.mirror.sync()

    def stop(self) -> None:
        """Mirror S3 a last time, forget moto's state (as a process exit would), stop the
        server and give the process back its environment."""
        if self._server is None:
            return
        if self.mirror is not None:
            try:
                self.mirror.stop()
            except Exception:
                logger.exception("final S3 mirror sync failed")
            self.mirror = None
        try:
            _post_json(f"{self.endpoint_url}/moto-api/reset", {})
        except OSError:
            logger.exception("could not reset moto's state")
        self._server.stop()
        self._server = None
        uninstall_lambda_hook()
        from moto.core.config import default_user_config

        cast(dict[str, Any], default_user_config).update(self._saved_moto_config)
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        self._function_arns.clear()
        self._state_machine_arns.clear()
        self._queues.clear()
        self._reset_process_caches()

    @staticmethod
    def _reset_process_caches() -> None:
        from shared.aws.clients import reset_clients
        from shared.config import reset_settings

        reset_settings()
        reset_clients()
