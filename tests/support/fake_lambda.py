"""A loopback stand-in for Lambda's Invoke API (``POST /2015-03-31/functions/{name}/invocations``,
the REST-JSON protocol boto3 speaks), for a caller that invokes a function synchronously.

Each function name maps to a behaviour: a handler (``handler(event, context)``, run as
Lambda's Python runtime would: its return value JSON-encoded, an exception reported as an
``Unhandled`` function error), or a scripted ``Reply`` (status, body, function error, error
type: throttling, a missing function, a timed-out or oversized answer). Invocations are
recorded with their payloads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import unquote

from infra.local.invoker import LocalContext

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes
    function_error: str | None = None  # X-Amz-Function-Error: "Unhandled"
    error_type: str | None = None  # x-amzn-ErrorType of an API error (status >= 400)


@dataclass
class Invocation:
    function: str
    invocation_type: str | None
    payload: bytes


@dataclass
class _State:
    behaviours: dict[str, Handler | Reply] = field(default_factory=dict)
    invocations: list[Invocation] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        parts = self.path.split("/")
        # /2015-03-31/functions/{name}/invocations
        if len(parts) != 5 or parts[2] != "functions" or parts[4] != "invocations":
            self._send(Reply(404, {"message": f"unknown path {self.path}"}, error_type="UnknownOperationException"))
            return
        name = unquote(parts[3])
        payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state = self.server.state
        state.invocations.append(Invocation(name, self.headers.get("X-Amz-Invocation-Type"), payload))
        behaviour = state.behaviours.get(name)
        if behaviour is None:
            self._send(Reply(404, {"Type": "User", "message": f"Function not found: {name}"},
                             error_type="ResourceNotFoundException"))
        elif isinstance(behaviour, Reply):
            self._send(behaviour)
        else:
            self._send(self._run(name, behaviour, payload))

    @staticmethod
    def _run(name: str, handler: Handler, payload: bytes) -> Reply:
        try:
            result = handler(json.loads(payload or b"{}"), LocalContext(name, 512, 900))
        except Exception as exc:  # reported to the caller, as Lambda reports a crash
            return Reply(200, {"errorType": type(exc).__name__, "errorMessage": str(exc)}, function_error="Unhandled")
        return Reply(200, result)

    def _send(self, reply: Reply) -> None:
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Amz-Executed-Version", "$LATEST")
        if reply.function_error:
            self.send_header("X-Amz-Function-Error", reply.function_error)
        if reply.error_type:
            self.send_header("x-amzn-ErrorType", reply.error_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = _State()


class FakeLambda:
    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-lambda", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve(self, function: str, behaviour: Handler | Reply) -> None:
        self._server.state.behaviours[function] = behaviour

    @property
    def invocations(self) -> list[Invocation]:
        return self._server.state.invocations

    def client(self) -> Any:
        """A boto3 Lambda client for this endpoint, without retries (each call is one invocation)."""
        import boto3
        from botocore.config import Config

        return boto3.client("lambda", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 1}))
