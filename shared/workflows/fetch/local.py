"""The safe fetch itself: one HTTP exchange through the egress policy (shared/egress.py).

- Every hop goes through ``guarded_transport``: the first request and each redirect's have
  their scheme and host checked, and every connection resolves the host once, refuses it when
  any of its addresses is refused, and connects to the checked address (no DNS rebinding).
- Redirects are followed here, one hop at a time, through that same transport: a redirect
  response is closed unread, and the hop count is the request's.
- The body is streamed and cut at ``max_response_bytes``: past it the connection is closed and
  the rest never read (a declared ``Content-Length`` over the limit is refused before reading).
  Compressed bodies are counted decoded, and httpx2 inflates them in bounded pieces.
- No proxies from the environment (a proxy would make the connection the policy refuses) and
  no cookies kept: a jar that refuses every cookie, so one tenant's request never carries
  another's (or a redirect's) cookies.

httpx2 loads on the first fetch, not at import.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from shared.egress import EgressPolicy, EgressRefused, Resolver, guarded_transport
from shared.workflows.fetch.ports import (
    FetchError,
    FetchFailed,
    FetchRefused,
    FetchRequest,
    FetchResponse,
    FetchTimeout,
    FetchTimeouts,
    FetchTooLarge,
)

if TYPE_CHECKING:
    import httpx2

USER_AGENT = "Stratus-Workflows/1 (HTTP request node)"
# Only the encodings httpx2 inflates in bounded pieces (zlib), whatever else is installed.
ACCEPT_ENCODING = "gzip, deflate"
_FORBIDDEN_IN_HEADER = re.compile("[\r\n\0]")
_LIMIT_HINT = ("raise the node's max_response_bytes, or ask the server for less (a filter, a page, "
               "a range)")


def refusal(exc: EgressRefused) -> FetchError:
    """The fetch error of an egress refusal: a scheme or a malformed URL is a failed request;
    any other rule names itself and who can lift it."""
    if exc.rule in ("scheme", "invalid_url"):
        return FetchFailed(f"{_cut(exc.host)} cannot be fetched: {_REASONS[exc.rule]}")
    where = f"{exc.host} ({exc.address})" if exc.address and exc.address != exc.host else exc.host
    return FetchRefused(
        f"{where} is not an allowed destination: {exc.rule.replace('_', '-')} address (egress rule "
        f"{exc.rule!r}). If the workflow must reach it, ask the operator to add the host to "
        "STRATUS_EGRESS_ALLOW.", rule=exc.rule, host=exc.host)


_REASONS = {"scheme": "only http and https URLs are allowed", "invalid_url": "not a valid URL"}


class _RefuseAll(DefaultCookiePolicy):
    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False


class SafeFetcher:
    """An :class:`~shared.workflows.fetch.ports.HttpFetcher` that goes through ``policy``. One
    per container: its connection pool is shared by every request (thread-safe)."""

    def __init__(self, policy: EgressPolicy, *, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self._resolver = resolver
        self._lock = threading.Lock()
        self._client: httpx2.Client | None = None

    def _http(self) -> httpx2.Client:
        with self._lock:
            if self._client is None:
                import httpx2

                transport = guarded_transport(self.policy, refused=refusal, resolver=self._resolver)
                self._client = httpx2.Client(
                    transport=transport, trust_env=False, follow_redirects=False,
                    cookies=CookieJar(policy=_RefuseAll()),
                    headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING})
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def fetch(self, request: FetchRequest) -> FetchResponse:
        try:
            self.policy.check_url(request.url)
        except EgressRefused as exc:
            raise refusal(exc) from None
        client = self._http()
        deadline = _Deadline(request.timeouts.total_s)
        host = urlsplit(request.url).hostname or "the server"
        with _translated(request, host):
            outgoing = self._build(client, request)
            response = client.send(outgoing, stream=True)
        try:
            hops = 0
            while request.follow_redirects and response.next_request is not None:
                following = response.next_request
                if hops == request.max_redirects:
                    raise FetchFailed(f"more than {request.max_redirects} redirects (the last to "
                                      f"{following.url.host or '?'}): raise max_redirects or call the final URL")
                # Unread: a redirect's body is nothing the node needs, and could be anything.
                response.close()
                hops += 1
                deadline.check(request)
                host = following.url.host or "the server"
                if _origin(following.url) != _origin(outgoing.url):
                    # The node's headers were meant for the host it named: httpx drops only
                    # Authorization on a cross-origin hop, so an api-key in a custom header would
                    # follow a redirect to any host. Only content-neutral headers go on.
                    for name, _ in request.headers:
                        if name.lower() not in _NEUTRAL_HEADERS:
                            following.headers.pop(name, None)
                with _translated(request, host, redirect=True):
                    response = client.send(following, stream=True)
            with _translated(request, host):
                body = _read_capped(response, request, deadline)
            return FetchResponse(status_code=response.status_code, headers=_headers(response), body=body,
                                 url=str(response.url))
        finally:
            response.close()

    @staticmethod
    def _build(client: httpx2.Client, request: FetchRequest) -> httpx2.Request:
        import httpx2

        timeouts = request.timeouts
        try:
            # Values as UTF-8: what servers that accept non-ASCII header values expect.
            headers = [(name.encode("ascii"), value.encode("utf-8")) for name, value in request.headers]
        except UnicodeEncodeError:
            raise FetchFailed("a header name has characters outside ASCII: header names are ASCII "
                              "tokens") from None
        for name, value in request.headers:
            # Refused here, naming the header only: h11's own error quotes the value, which may
            # be an API key, and the message is recorded with the node and sent in its events.
            if _FORBIDDEN_IN_HEADER.search(name) or _FORBIDDEN_IN_HEADER.search(value):
                raise FetchFailed(f"the header {_cut(name, 100)!r} holds a line break or NUL once rendered: "
                                  "header names and values are single lines (check the variables it uses)")
        total = timeouts.total_s

        def within_total(seconds: float) -> float:
            # No single wait may outlast the whole exchange's budget.
            return seconds if total is None else min(seconds, total)

        return client.build_request(
            request.method, _with_params(request.url, request.params), headers=headers, content=request.body,
            timeout=httpx2.Timeout(connect=within_total(timeouts.connect_s), read=within_total(timeouts.read_s),
                                   write=within_total(timeouts.write_s), pool=within_total(timeouts.connect_s)))


def _with_params(url: str, params: list[tuple[str, str]]) -> str:
    """``params`` after the URL's own query, which is kept as written (httpx2 would replace it)."""
    if not params:
        return url
    parts = urlsplit(url)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query))


class _Deadline:
    def __init__(self, total_s: float | None) -> None:
        self._at = None if total_s is None else time.monotonic() + total_s

    def check(self, request: FetchRequest) -> None:
        if self._at is not None and time.monotonic() > self._at:
            raise FetchTimeout(f"the request took longer than {request.timeouts.total_s:g} s in all "
                               "(timeouts.total_s, redirects and body included)")


def _read_capped(response: httpx2.Response, request: FetchRequest, deadline: _Deadline) -> bytes:
    limit = request.max_response_bytes
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit and response.headers.get("content-encoding", "identity") in (
            "", "identity"):
        raise FetchTooLarge(f"the response body is {int(declared)} bytes, over the limit of {limit} bytes: "
                            f"{_LIMIT_HINT}")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            # The caller closes the response: the connection goes, the rest is never read.
            raise FetchTooLarge(f"the response body is over the limit of {limit} bytes: {_LIMIT_HINT}")
        chunks.append(chunk)
        deadline.check(request)
    return b"".join(chunks)


def _headers(response: httpx2.Response) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


@contextmanager
def _translated(request: FetchRequest, host: str, *, redirect: bool = False) -> Iterator[None]:
    """httpx2's failures as fetch errors that say which limit or what broke (``host``: the
    hop's)."""
    import httpx2

    timeouts = request.timeouts
    try:
        yield
    except FetchRefused as exc:
        if redirect:
            raise FetchRefused(f"a redirect to {exc.message}", rule=exc.rule, host=exc.host) from None
        raise
    except FetchError:
        raise
    except httpx2.ConnectTimeout:
        raise FetchTimeout(f"could not connect to {host} within {_limit(timeouts, 'connect_s')}") from None
    except httpx2.WriteTimeout:
        raise FetchTimeout(f"sending the request to {host} stalled for {_limit(timeouts, 'write_s')}") from None
    except httpx2.ReadTimeout:
        raise FetchTimeout(f"{host} sent nothing for {_limit(timeouts, 'read_s')}") from None
    except httpx2.PoolTimeout:
        raise FetchTimeout(f"no connection to {host} was free within {_limit(timeouts, 'connect_s')}") from None
    except (httpx2.InvalidURL, httpx2.UnsupportedProtocol) as exc:
        raise FetchFailed(f"{'a redirect went to an' if redirect else 'an'} invalid URL: {exc}") from None
    except httpx2.DecodingError as exc:
        raise FetchFailed(f"the response body could not be decoded (its Content-Encoding): {exc}") from None
    except httpx2.ConnectError as exc:
        raise FetchFailed(_connect_failure(host, exc)) from None
    except httpx2.LocalProtocolError:
        # Not the exception's text: it quotes the offending header, value (an API key) included.
        raise FetchFailed("the request is not valid HTTP: a header name or value has a character HTTP does "
                          "not allow") from None
    except httpx2.TransportError as exc:
        raise FetchFailed(f"the exchange with {host} broke off: {type(exc).__name__}: {exc}") from None


def _limit(timeouts: FetchTimeouts, phase: str) -> str:
    """The limit that ran out, as the node names it: the phase's, or the whole exchange's when
    that is the smaller (it caps each wait)."""
    seconds: float = getattr(timeouts, phase)
    if timeouts.total_s is not None and timeouts.total_s < seconds:
        return f"{timeouts.total_s:g} s (timeouts.total_s)"
    return f"{seconds:g} s (timeouts.{phase})"


def _connect_failure(host: str, exc: Exception) -> str:
    text = str(exc)
    if "SSL" in text or "CERTIFICATE" in text.upper():
        return f"the TLS handshake with {host} failed (a certificate the platform does not trust?): {text}"
    return f"could not connect to {host}: {text or type(exc).__name__}"


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# Headers that say nothing about who is asking: kept when a redirect leaves the node's origin.
_NEUTRAL_HEADERS = frozenset({"accept", "accept-language", "accept-encoding", "content-type", "user-agent",
                              "cache-control"})


def _origin(url: Any) -> tuple[str, str, int | None]:
    return (str(url.scheme), str(url.host), url.port)
