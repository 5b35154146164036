"""A loopback HTTP/1.1 server for the fetch path's tests (a tenant's API, as an HTTP-request
node would call it). Every request is recorded (``server.requests``); paths:

- ``/echo`` (any method): JSON of the method, path, query pairs, headers and body (base64).
- ``/redirect?to=<url>&status=302``: a redirect (``Set-Cookie`` on it too).
- ``/cookie``: sets a cookie.
- ``/multi``: a header sent twice.
- ``/bytes?size=N[&length=1][&gzip=1][&type=T]``: N bytes in 64 KiB chunks, chunked unless
  ``length`` declares them; ``gzip`` sends N zero bytes gzip-compressed; ``type`` is the
  Content-Type (default application/octet-stream). ``server.streams`` records, per
  response, how much was written and whether the client went away first.
- ``/slow?delay=S``: sleeps S seconds before the status line.
- ``/page``: a small HTML page (a title, a heading, a paragraph, a script and a style).
- ``/status?code=N``: answers status N with a short JSON body.
- ``/drip?every=S&count=N``: one byte every S seconds.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

CHUNK = 64 * 1024


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class Stream:
    planned: int
    written: int = 0
    aborted: bool = False
    done: bool = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle and delayed ACKs add
    # ~40 ms to every answer on a reused connection.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record(Recorded(self.command, parts.path, query, list(self.headers.items()), body))
        params = dict(query)
        route = getattr(self, "_route_" + parts.path.strip("/").replace("-", "_"), None)
        if route is None:
            self._answer(404, b"not found")
            return
        route(params, query, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None,
                content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers or []:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route_echo(self, params: dict[str, str], query: list[tuple[str, str]], body: bytes) -> None:
        echoed = {"method": self.command, "path": urlsplit(self.path).path, "query": query,
                  "headers": [[k, v] for k, v in self.headers.items()], "body": base64.b64encode(body).decode()}
        self._answer(200, json.dumps(echoed).encode(), content_type="application/json; charset=utf-8")

    def _route_redirect(self, params: dict[str, str], query: list[tuple[str, str]], body: bytes) -> None:
        self._answer(int(params.get("status", "302")), b"moved " * 1000,
                     headers=[("Location", params["to"]), ("Set-Cookie", "hop=1; Path=/")])

    def _route_cookie(self, params: dict[str, str], query: list[tuple[str, str]], body: bytes) -> None:
        self._answer(200, b"cookie set", headers=[("Set-Cookie", "session=secret; Path=/")])

    def _route_multi(self, params: dict[str, str], query: list[tuple[str, str]], body: bytes) -> None:
        self._answer(200, b"two", headers=[("X-Multi", "a"), ("X-Multi", "b")])

    def _route_bytes(self, params: dict[str, str], query: list[tuple[str, str]], body: bytes) -> None:
        size = int(params["size"])
        if params.get("gzip"):
            self._answer(200, gzip.compress(b"\0" * size), headers=[("Content-Encoding", "gzip")],
                         content_type=params.get("type", "text/plain"))
            return
        stream = self.server.new_stream(size)
        self.send_response(200)
        self.send_header("Content-Type", params.get("type", "application/octet-stream"))
        if params.get("length"):
            self.send_header("Content-Length", str(size))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        piece = b"x" * CHUNK
        try:
            while stream.written < size:
                n = min(CHUNK, size - stream.written)
                data = piece[:n]
                self.wfile.write(data if params.get("length") else b"%x\r\n%s\r\n" % (n, data))
                self.wfile.flush()
                stream.written += n
            if not params.get("length"):
                self.wfile.write(b"0\r\n\r\n")
            stream.done = True
        except OSError:  # the client closed the connection (reset or broken pipe)
            stream.aborted = True
            self.close_connection = True

    def _route_page(self, params: dict[str, str], query: list[tuple[str, str]], body: bytes) -> None:
        page = (b"<html><head><title>Tide tables</title><style>p {color: red}</style></head><body>"
                b"<h1>High tide</h1><script>alert('x')</script><p>High tide is at <b>06:42</b> today.</p>"
                b"</body></html>")
        self._answer(200, page, content_type="text/html; charset=utf-8")

    def _route_status(self, params: dict[str, str], query: list[tuple[str, str]], body: bytes) -> None:
        code = int(params.get("code", "200"))
        self._answer(code, json.dumps({"status": code}).encode(), content_type="application/json")

    def _route_slow(self, params: dict[str, str], query: list[tuple[str, str]], body: bytes) -> None:
        time.sleep(float(params["delay"]))
        try:
            self._answer(200, b"late")
        except OSError:  # the client gave up waiting, as the test meant it to
            self.close_connection = True

    def _route_drip(self, params: dict[str, str], query: list[tuple[str, str]], body: bytes) -> None:
        count = int(params["count"])
        self.send_response(200)
        self.send_header("Content-Length", str(count))
        self.end_headers()
        try:
            for _ in range(count):
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(float(params["every"]))
        except OSError:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.streams: list[Stream] = []

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def new_stream(self, size: int) -> Stream:
        stream = Stream(size)
        with self._lock:
            self.streams.append(stream)
        return stream


class HttpTarget:
    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-target", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def requests(self) -> list[Recorded]:
        return self._server.requests

    @property
    def streams(self) -> list[Stream]:
        return self._server.streams

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def reset(self) -> None:
        self._server.requests.clear()
        self._server.streams.clear()
