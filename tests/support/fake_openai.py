"""A local OpenAI-compatible server speaking the real wire protocol, scriptable per test.

``/v1/chat/completions`` answers JSON, or server-sent events (``data: {chunk}`` lines, then
``data: [DONE]``) when the request asks ``"stream": true``; tool call arguments are split
across chunks as OpenAI does, and a final usage chunk (``choices: []``) follows when the
request sets ``stream_options.include_usage``. ``/v1/embeddings`` answers floats, or base64
float32 when ``encoding_format`` is ``"base64"`` (the SDK's default).

Script replies with ``server.enqueue(...)``: ``ChatScript`` (rendered as JSON or SSE to match
the request), ``EmbeddingScript`` and ``RawReply`` (any status, headers, body). A request with
no matching scripted reply gets a default answer, so end-to-end tests can run without a
script. Every request is recorded (``server.requests``). Streams use chunked transfer
encoding over HTTP/1.1 keep-alive, like the real API, so an aborted stream looks to the
client exactly like a dropped connection.

``ScriptedHTTPServer`` (the threading, recording and chunked-stream machinery) is shared with
``tests.support.fake_anthropic``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}"


# --- scripts (shared with the Anthropic fake) ---


@dataclass
class ToolCallScript:
    name: str
    # The arguments JSON text, in the pieces the stream sends (joined for a JSON answer).
    arguments: list[str] = field(default_factory=lambda: ["{}"])
    id: str = field(default_factory=lambda: _next_id("call_"))


@dataclass
class ChatScript:
    """One chat answer; rendered as JSON or as a stream, whichever the request asked for."""

    text: list[str] = field(default_factory=lambda: ["Hello", " from", " the fake"])
    tool_calls: list[ToolCallScript] = field(default_factory=list)
    # None: "tool_calls"/"tool_use" when there are tool calls, else "stop"/"end_turn".
    finish_reason: str | None = None
    # (input tokens, output tokens); None: the answer carries no usage at all.
    usage: tuple[int, int] | None = (12, 7)
    model: str | None = None  # None: echo the requested model
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    first_byte_delay_s: float = 0.0  # before the status line
    chunk_delay_s: float = 0.0  # between stream chunks
    # Close the socket (no terminating chunk) after this many stream chunks were sent.
    disconnect_after_chunks: int | None = None
    # Replace the stream chunk at this position with bytes that are not JSON.
    malformed_chunk_at: int | None = None
    # End the stream cleanly but without a finish reason (and, for OpenAI, without [DONE]).
    omit_finish: bool = False
    # After the last event, keep the response open this long before ending its body.
    hold_open_s: float = 0.0
    # Answer only a request whose body holds this text (e.g. a node's prompt): parallel callers
    # then get their own reply whatever order their requests arrive in. None: any request.
    when: str | None = None


@dataclass
class EmbeddingScript:
    # None: a deterministic vector per input text (its first value is the text's length).
    vectors: list[list[float]] | None = None
    reverse_order: bool = False  # list data items last-index first (clients must sort by index)
    prompt_tokens: int | None = None  # None: one per whitespace-separated word
    dimensions: int = 8


@dataclass
class RawReply:
    status: int
    body: Any = None  # dict/list: JSON; str/bytes: sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    path: str | None = None  # only for requests to this path (None: any)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None


Reply = ChatScript | EmbeddingScript | RawReply


def fake_embedding(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [float(len(text))] + [digest[i % len(digest)] / 255 for i in range(dimensions - 1)]


# --- the server machinery ---


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._connected()
        # Like real servers: without it, headers then body in two writes meet the client's
        # delayed ACK (Nagle) and every reply takes ~40 ms longer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(method, self.path.split("?", 1)[0],
                                  {k.lower(): v for k, v in self.headers.items()}, body)
        fake = self.server.fake
        fake._record(request)
        try:
            fake.respond(Exchange(self, fake), request)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            # The client gave up (a read timeout in a test): nothing to answer.
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: ScriptedHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up on a kept-alive connection is normal, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Exchange:
    """Writes one response: JSON, or a chunked stream that may be aborted."""

    def __init__(self, handler: _Handler, fake: ScriptedHTTPServer) -> None:
        self._handler = handler
        self._fake = fake

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self._fake._stopping.wait(seconds)

    def send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = json.dumps(body).encode()
        handler = self._handler
        handler.send_response(status)
        names = {name.lower() for name in (headers or {})}
        if "content-type" not in names:
            handler.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()

    def start_stream(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        handler = self._handler
        handler.send_response(status)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.flush()

    def chunk(self, data: bytes) -> None:
        wfile = self._handler.wfile
        wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        wfile.flush()

    def end_stream(self) -> None:
        self._handler.wfile.write(b"0\r\n\r\n")
        self._handler.wfile.flush()

    def abort(self) -> None:
        """Drop the connection mid-response, as a crashed upstream or a cut network does."""
        self._handler.close_connection = True
        try:
            self._handler.wfile.flush()
            self._handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def stream_events(self, events: Iterator[bytes], script: ChatScript) -> None:
        """Send SSE ``events`` (each one complete, blank line included) per the script's options."""
        self.start_stream(200, script.headers)
        for position, event in enumerate(events):
            if script.disconnect_after_chunks is not None and position >= script.disconnect_after_chunks:
                self.abort()
                return
            if position and script.chunk_delay_s:
                self.wait(script.chunk_delay_s)
            self.chunk(event)
        self.wait(script.hold_open_s)
        self.end_stream()


class ScriptedHTTPServer:
    """A ThreadingHTTPServer on 127.0.0.1 (free port) with a queue of scripted replies."""

    def __init__(self) -> None:
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[RecordedRequest] = []
        # TCP connections accepted (keep-alive reuse shows as fewer connections than requests).
        self.connections = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, "the server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # scripting

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.requests.clear()
            self.connections = 0

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def take(self, path: str, kind: type[ChatScript] | type[EmbeddingScript], body: Any = None) -> Reply | None:
        """The first queued reply meant for ``path``: a script of ``kind`` (whose ``when``, if
        any, is in the request's ``body``), or a RawReply."""
        text = json.dumps(body, ensure_ascii=False) if body is not None else ""
        with self._lock:
            for reply in self._replies:
                if isinstance(reply, ChatScript) and reply.when is not None and reply.when not in text:
                    continue
                if isinstance(reply, kind) or (isinstance(reply, RawReply) and reply.path in (None, path)):
                    self._replies.remove(reply)
                    return reply
        return None

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def respond(self, exchange: Exchange, request: RecordedRequest) -> None:
        raise NotImplementedError

    @staticmethod
    def send_raw(exchange: Exchange, reply: RawReply) -> None:
        exchange.wait(reply.delay_s)
        exchange.send(reply.status, reply.body, reply.headers)


# --- OpenAI ---


def _sse(data: Any) -> bytes:
    return b"data: " + (data if isinstance(data, bytes) else json.dumps(data).encode()) + b"\n\n"


class FakeOpenAI(ScriptedHTTPServer):
    """``base_url`` is what ``openai.OpenAI(base_url=...)`` takes."""

    CHAT_PATH = "/v1/chat/completions"
    EMBEDDINGS_PATH = "/v1/embeddings"

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        return [request.body for request in self.requests_to(self.CHAT_PATH)]

    def respond(self, exchange: Exchange, request: RecordedRequest) -> None:
        if request.path == self.CHAT_PATH and request.method == "POST":
            reply = self.take(request.path, ChatScript, request.body) or ChatScript()
        elif request.path == self.EMBEDDINGS_PATH and request.method == "POST":
            reply = self.take(request.path, EmbeddingScript) or EmbeddingScript()
        else:
            exchange.send(404, {"error": {"message": f"no route {request.path}", "type": "invalid_request_error",
                                          "param": None, "code": "unknown_url"}})
            return
        if isinstance(reply, RawReply):
            self.send_raw(exchange, reply)
        elif isinstance(reply, EmbeddingScript):
            self._embeddings(exchange, request.body or {}, reply)
        else:
            self._chat(exchange, request.body or {}, reply)

    # chat

    def _chat(self, exchange: Exchange, body: dict[str, Any], script: ChatScript) -> None:
        exchange.wait(script.first_byte_delay_s)
        model = script.model or body.get("model") or "gpt-fake"
        finish = script.finish_reason or ("tool_calls" if script.tool_calls else "stop")
        if not body.get("stream"):
            exchange.send(script.status, self.completion(script, model, finish), script.headers)
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        exchange.stream_events(self._chunks(script, model, finish, include_usage), script)

    @staticmethod
    def completion(script: ChatScript, model: str, finish: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(script.text) or None, "refusal": None}
        if script.tool_calls:
            message["tool_calls"] = [
                {"id": call.id, "type": "function",
                 "function": {"name": call.name, "arguments": "".join(call.arguments)}}
                for call in script.tool_calls
            ]
        answer: dict[str, Any] = {
            "id": _next_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        }
        if script.usage is not None:
            answer["usage"] = {"prompt_tokens": script.usage[0], "completion_tokens": script.usage[1],
                               "total_tokens": sum(script.usage)}
        return answer

    @staticmethod
    def _chunks(script: ChatScript, model: str, finish: str, include_usage: bool) -> Iterator[bytes]:
        chunk_id, created = _next_id("chatcmpl-"), int(time.time())

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                data["usage"] = None
            return data

        events: list[bytes] = [_sse(chunk({"role": "assistant", "content": "", "refusal": None}))]
        events += [_sse(chunk({"content": piece})) for piece in script.text]
        for index, call in enumerate(script.tool_calls):
            events.append(_sse(chunk({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                                      "function": {"name": call.name, "arguments": ""}}]})))
            events += [_sse(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
                       for piece in call.arguments]
        if not script.omit_finish:
            events.append(_sse(chunk({}, finish)))
            if include_usage and script.usage is not None:
                events.append(_sse({
                    "id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": "fp_fake", "choices": [],
                    "usage": {"prompt_tokens": script.usage[0], "completion_tokens": script.usage[1],
                              "total_tokens": sum(script.usage)},
                }))
            events.append(b"data: [DONE]\n\n")
        if script.malformed_chunk_at is not None:
            events[script.malformed_chunk_at] = b'data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n'
        yield from events

    # embeddings

    def _embeddings(self, exchange: Exchange, body: dict[str, Any], script: EmbeddingScript) -> None:
        texts = body.get("input") or []
        if isinstance(texts, str):
            texts = [texts]
        dimensions = int(body.get("dimensions") or script.dimensions)
        vectors = script.vectors or [fake_embedding(str(text), dimensions) for text in texts]
        items: list[dict[str, Any]] = []
        for index, vector in enumerate(vectors):
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            items.append({"object": "embedding", "index": index, "embedding": embedding})
        if script.reverse_order:
            items.reverse()
        tokens = script.prompt_tokens
        if tokens is None:
            tokens = sum(len(str(text).split()) for text in texts)
        exchange.send(200, {"object": "list", "data": items, "model": body.get("model", "embed-fake"),
                            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def openai_error(status: int, message: str, *, type_: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None, path: str | None = None) -> RawReply:
    """An error reply shaped like OpenAI's (``{"error": {message, type, param, code}}``)."""
    return RawReply(status, {"error": {"message": message, "type": type_, "param": param, "code": code}},
                    {"x-request-id": _next_id("req_"), **(headers or {})}, path=path)
