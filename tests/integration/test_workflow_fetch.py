"""The safe fetch path of HTTP-request nodes (shared/workflows/fetch/) against a real HTTP server
on loopback: requests as rendered (method, params, headers, body), redirects followed through
the egress policy (a redirect inward is refused), the response cut at its limit with the
connection closed, timeouts, schemes; then the fetch function's JSON contract, called directly
and through boto3 against a stand-in for Lambda's Invoke API.

The suite's set-up allows loopback (STRATUS_EGRESS_ALLOW); the policies here are explicit."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.local.invoker import LocalContext
from shared.config import reset_settings
from shared.egress import EgressPolicy
from shared.workflows.fetch.local import SafeFetcher
from shared.workflows.fetch.ports import (
    FetchError,
    FetchFailed,
    FetchRefused,
    FetchRequest,
    FetchResponse,
    FetchTimeout,
    FetchTimeouts,
    FetchTooLarge,
    from_answer,
)
from shared.workflows.fetch.remote import LAMBDA_MAX_BODY_BYTES, LambdaFetcher
from shared.workflows.fetch.wiring import http_fetcher, safe_fetcher
from tests.support.fake_lambda import FakeLambda, Reply
from tests.support.http_target import HttpTarget

LOOPBACK = EgressPolicy.parse("127.0.0.0/8")
# A public-looking name the tests' resolver points at the loopback server: allowed by name
# (so its own address is not checked), while anything it redirects to is.
API_HOST = "api.example.test"
INTRANET_HOST = "intranet.example.test"


def _resolver(host: str, port: int) -> list[str]:
    return {API_HOST: ["127.0.0.1"], INTRANET_HOST: ["10.0.0.7"]}.get(host) or ["198.51.100.1"]


@pytest.fixture(scope="module")
def target() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


@pytest.fixture
def server(target: HttpTarget) -> HttpTarget:
    target.reset()
    return target


@pytest.fixture(scope="module")
def fetcher() -> Iterator[SafeFetcher]:
    instance = SafeFetcher(LOOPBACK)
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def by_name_only() -> Iterator[SafeFetcher]:
    """Allows API_HOST by name and nothing else: loopback itself is refused."""
    instance = SafeFetcher(EgressPolicy.parse(API_HOST), resolver=_resolver)
    yield instance
    instance.close()


def _echo(response: FetchResponse) -> dict[str, Any]:
    assert response.status_code == 200, response
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return dict(json.loads(response.text))


def _header(echo: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in echo["headers"] if key.lower() == name.lower()]


def _fails(fetch: Callable[[], Any], kind: type[FetchError]) -> FetchError:
    with pytest.raises(kind) as info:
        fetch()
    assert info.value.code == kind.CODE  # type: ignore[attr-defined]
    return info.value


# --- requests as rendered -------------------------------------------------------------------------


def test_get_sends_params_after_the_urls_own_query_and_the_headers_as_given(
        server: HttpTarget, fetcher: SafeFetcher) -> None:
    response = fetcher.fetch(FetchRequest(
        "GET", server.url("/echo?q=stratus&page=1"),
        params=[("tag", "a b"), ("tag", "ü&x"), ("page", "2")],
        headers=[("X-Trace", "t-1"), ("X-Trace", "t-2"), ("Accept", "application/json"), ("X-Name", "café")]))
    echo = _echo(response)
    assert echo["method"] == "GET" and echo["path"] == "/echo"
    # The URL's own query first and untouched, then every param, repeated names kept.
    assert echo["query"] == [["q", "stratus"], ["page", "1"], ["tag", "a b"], ["tag", "ü&x"], ["page", "2"]]
    assert _header(echo, "X-Trace") == ["t-1", "t-2"]
    assert _header(echo, "Accept") == ["application/json"]
    assert _header(echo, "X-Name") == ["cafÃ©"]  # UTF-8 on the wire, read back as Latin-1 by http.server
    assert _header(echo, "User-Agent") == ["Stratus-Workflows/1 (HTTP request node)"]
    assert _header(echo, "Accept-Encoding") == ["gzip, deflate"]
    assert response.url == server.url("/echo?q=stratus&page=1&tag=a+b&tag=%C3%BC%26x&page=2")


def test_post_sends_the_body_bytes_unchanged(server: HttpTarget, fetcher: SafeFetcher) -> None:
    body = bytes(range(256)) * 3
    echo = _echo(fetcher.fetch(FetchRequest("POST", server.url("/echo"), body=body,
                                            headers=[("Content-Type", "application/octet-stream")])))
    assert echo["method"] == "POST"
    assert base64.b64decode(echo["body"]) == body
    assert _header(echo, "Content-Length") == [str(len(body))]
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
        assert _echo(fetcher.fetch(FetchRequest(method, server.url("/echo"), body=b"{}")))["method"] == method


@pytest.mark.parametrize("header", [("Authorization", "Bearer sk-SECRET\r\nX-Injected: 1"),
                                    ("X-Key", "sk-SECRET\nX-Injected: 1"), ("X-Key", "sk-SECRET\x00")])
def test_a_header_with_a_line_break_is_refused_without_quoting_its_value(
        server: HttpTarget, fetcher: SafeFetcher, header: tuple[str, str]) -> None:
    # The value may be an API key: the error is recorded with the node and sent in its events.
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", server.url("/echo"), headers=[header])), FetchFailed)
    assert "sk-SECRET" not in error.message and header[0] in error.message
    assert server.requests == []


def test_head_answers_headers_and_no_body(server: HttpTarget, fetcher: SafeFetcher) -> None:
    response = fetcher.fetch(FetchRequest("HEAD", server.url("/echo")))
    assert response.status_code == 200 and response.body == b""
    assert int(response.headers["content-length"]) > 0


def test_response_headers_are_lower_cased_and_repeats_joined(server: HttpTarget, fetcher: SafeFetcher) -> None:
    response = fetcher.fetch(FetchRequest("GET", server.url("/multi")))
    assert response.headers["x-multi"] == "a, b"
    assert all(name == name.lower() for name in response.headers)
    assert response.body == b"two" and response.text == "two"


def test_an_error_status_is_a_response_not_a_failure(server: HttpTarget, fetcher: SafeFetcher) -> None:
    response = fetcher.fetch(FetchRequest("GET", server.url("/nowhere")))
    assert response.status_code == 404 and response.body == b"not found"


def test_no_cookie_is_kept_between_requests_or_hops(server: HttpTarget, fetcher: SafeFetcher) -> None:
    assert fetcher.fetch(FetchRequest("GET", server.url("/cookie"))).headers["set-cookie"].startswith("session=")
    echo = _echo(fetcher.fetch(FetchRequest("GET", server.url("/echo"))))
    assert _header(echo, "Cookie") == []
    # A redirect that sets a cookie: the next hop does not carry it either.
    redirected = fetcher.fetch(FetchRequest("GET", server.url("/redirect?to=/echo")))
    assert _header(_echo(redirected), "Cookie") == []
    # A cookie the node sets itself is sent.
    echo = _echo(fetcher.fetch(FetchRequest("GET", server.url("/echo"), headers=[("Cookie", "mine=1")])))
    assert _header(echo, "Cookie") == ["mine=1"]


def test_proxies_from_the_environment_are_not_used(server: HttpTarget, fetcher: SafeFetcher,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy would make the connection, and reach what the policy refuses; port 9 (discard)
    # answers nothing, so going through it would fail the request.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    fresh = SafeFetcher(LOOPBACK)
    try:
        assert _echo(fresh.fetch(FetchRequest("GET", server.url("/echo"))))["path"] == "/echo"
    finally:
        fresh.close()


# --- redirects ------------------------------------------------------------------------------------


def test_redirects_are_followed_and_the_final_url_answered(server: HttpTarget, fetcher: SafeFetcher) -> None:
    response = fetcher.fetch(FetchRequest("GET", server.url("/redirect?to=/redirect%3Fto%3D/echo")))
    assert _echo(response)["path"] == "/echo"
    assert response.url == server.url("/echo")
    assert server.paths() == ["/redirect", "/redirect", "/echo"]


def test_a_cross_origin_redirect_drops_the_nodes_own_headers(server: HttpTarget) -> None:
    """An api-key in a custom header was meant for the host the node named, not for wherever it
    redirects (httpx itself drops only Authorization)."""
    fetcher = SafeFetcher(EgressPolicy.parse([API_HOST, "127.0.0.0/8"]), resolver=_resolver)
    try:
        final = server.url("/echo")
        response = fetcher.fetch(FetchRequest(
            "GET", server.url(f"/redirect?to={final}", host=API_HOST),
            headers=[("X-API-Key", "sk-secret"), ("Accept", "application/json")]))
        echo = _echo(response)
        assert _header(echo, "X-API-Key") == [] and _header(echo, "Accept") == ["application/json"]
        # The same origin keeps them.
        same = _echo(fetcher.fetch(FetchRequest("GET", server.url("/redirect?to=/echo"),
                                                headers=[("X-API-Key", "sk-secret")])))
        assert _header(same, "X-API-Key") == ["sk-secret"]
    finally:
        fetcher.close()


def test_a_303_turns_a_post_into_a_get_and_a_307_keeps_it(server: HttpTarget, fetcher: SafeFetcher) -> None:
    after_303 = _echo(fetcher.fetch(FetchRequest("POST", server.url("/redirect?to=/echo&status=303"), body=b"x")))
    assert after_303["method"] == "GET" and after_303["body"] == ""
    after_307 = _echo(fetcher.fetch(FetchRequest("POST", server.url("/redirect?to=/echo&status=307"), body=b"x")))
    assert after_307["method"] == "POST" and base64.b64decode(after_307["body"]) == b"x"


def test_without_follow_the_redirect_itself_is_the_response(server: HttpTarget, fetcher: SafeFetcher) -> None:
    response = fetcher.fetch(FetchRequest("GET", server.url("/redirect?to=/echo"), follow_redirects=False))
    assert response.status_code == 302 and response.headers["location"] == "/echo"
    assert server.paths() == ["/redirect"]


def test_more_redirects_than_allowed_fail(server: HttpTarget, fetcher: SafeFetcher) -> None:
    chain = "/redirect?to=/redirect%3Fto%3D/echo"
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", server.url(chain), max_redirects=1)), FetchFailed)
    assert "more than 1 redirects" in error.message and "max_redirects" in error.message
    assert server.paths() == ["/redirect", "/redirect"]
    assert _echo(fetcher.fetch(FetchRequest("GET", server.url(chain), max_redirects=2)))["path"] == "/echo"


@pytest.mark.parametrize(("location", "rule"), [
    ("http://127.0.0.1:{port}/echo", "loopback"),
    ("http://localhost:{port}/echo", "loopback"),
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "metadata"),
    ("http://[::ffff:169.254.169.254]/latest/meta-data/", "metadata"),
    ("http://10.0.0.1/admin", "private"),
    # A name that resolves inside: refused when the connection resolves it, before connecting.
    (f"http://{INTRANET_HOST}/admin", "private"),
])
def test_a_redirect_inward_is_refused(server: HttpTarget, by_name_only: SafeFetcher, location: str,
                                      rule: str) -> None:
    start = server.url("/redirect?to=" + location.format(port=server.port), host=API_HOST)
    error = _fails(lambda: by_name_only.fetch(FetchRequest("GET", start)), FetchRefused)
    assert isinstance(error, FetchRefused) and error.rule == rule
    assert error.message.startswith("a redirect to ")
    assert f"egress rule '{rule}'" in error.message and "STRATUS_EGRESS_ALLOW" in error.message
    # The first hop was made (its host is allowed by name); the refused one never was, though
    # for the loopback cases the very same server would have answered it.
    assert server.paths() == ["/redirect"]


def test_the_allowed_host_itself_is_fetched(server: HttpTarget, by_name_only: SafeFetcher) -> None:
    response = by_name_only.fetch(FetchRequest("GET", server.url("/echo", host=API_HOST)))
    assert _header(_echo(response), "Host") == [f"{API_HOST}:{server.port}"]


# --- refused destinations -------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "rule"), [
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://169.254.170.2/v2/credentials", "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("http://2852039166/latest/meta-data/", "metadata"),  # 169.254.169.254 as one number
    ("http://127.0.0.1:{port}/echo", "loopback"),
    ("http://0x7f.1:{port}/echo", "loopback"),
    ("http://localhost:{port}/echo", "loopback"),
    ("http://192.168.1.1/", "private"),
    (f"http://{INTRANET_HOST}/", "private"),
])
def test_non_public_destinations_are_refused_without_a_connection(server: HttpTarget, url: str, rule: str) -> None:
    nothing_allowed = SafeFetcher(EgressPolicy(), resolver=_resolver)
    try:
        error = _fails(lambda: nothing_allowed.fetch(FetchRequest("GET", url.format(port=server.port))), FetchRefused)
    finally:
        nothing_allowed.close()
    assert isinstance(error, FetchRefused) and error.rule == rule
    assert "ask the operator to add the host to STRATUS_EGRESS_ALLOW" in error.message
    assert server.requests == []


def test_the_metadata_address_stays_refused_when_loopback_is_allowed(fetcher: SafeFetcher) -> None:
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", "http://169.254.169.254/latest/meta-data/")),
                   FetchRefused)
    assert isinstance(error, FetchRefused) and error.rule == "metadata"


@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd", "gopher://example.com/",
                                 "//example.com/x", "http://", "http://[::1/", "http://example.com:99999/"])
def test_only_http_and_https_urls_are_fetched(fetcher: SafeFetcher, url: str) -> None:
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", url)), FetchFailed)
    assert "cannot be fetched" in error.message or "invalid URL" in error.message


def test_a_redirect_to_another_scheme_fails(server: HttpTarget, fetcher: SafeFetcher) -> None:
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", server.url("/redirect?to=file:///etc/passwd"))),
                   FetchFailed)
    assert "only http and https" in error.message


def test_a_closed_port_is_a_failed_connection(fetcher: SafeFetcher) -> None:
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", "http://127.0.0.1:9/")), FetchFailed)
    assert error.message.startswith("could not connect to 127.0.0.1")


# --- limits ---------------------------------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_a_body_over_the_limit_is_cut_and_the_connection_closed(server: HttpTarget, fetcher: SafeFetcher) -> None:
    planned = 64 * 1024 * 1024
    limit = 1024 * 1024
    started = time.monotonic()
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", server.url(f"/bytes?size={planned}"),
                                                      max_response_bytes=limit)), FetchTooLarge)
    assert f"over the limit of {limit} bytes" in error.message and "max_response_bytes" in error.message
    (stream,) = server.streams
    # The server finds the connection gone long before it has written its 64 MiB: only what the
    # socket buffers took past the limit was ever sent.
    _wait_for(lambda: stream.aborted or stream.done)
    assert stream.aborted and not stream.done
    assert stream.written < 16 * 1024 * 1024, stream.written
    assert time.monotonic() - started < 5
    # The connection pool is fine afterwards.
    assert fetcher.fetch(FetchRequest("GET", server.url("/multi"))).status_code == 200


def test_a_declared_length_over_the_limit_is_refused_before_reading(server: HttpTarget,
                                                                     fetcher: SafeFetcher) -> None:
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", server.url("/bytes?size=5000000&length=1"),
                                                      max_response_bytes=4096)), FetchTooLarge)
    assert error.message.startswith("the response body is 5000000 bytes, over the limit of 4096 bytes")
    (stream,) = server.streams
    _wait_for(lambda: stream.aborted or stream.done)
    assert stream.aborted and stream.written < 5_000_000


def test_a_body_at_the_limit_is_whole(server: HttpTarget, fetcher: SafeFetcher) -> None:
    size = 3 * 64 * 1024 + 17
    for declared in ("", "&length=1"):
        response = fetcher.fetch(FetchRequest("GET", server.url(f"/bytes?size={size}{declared}"),
                                              max_response_bytes=size))
        assert response.body == b"x" * size


def test_a_compressed_body_counts_decoded(server: HttpTarget, fetcher: SafeFetcher) -> None:
    # 20 MB of zeros compress to ~20 KB: the limit applies to what the node would hold.
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", server.url("/bytes?size=20000000&gzip=1"),
                                                      max_response_bytes=1_000_000)), FetchTooLarge)
    assert "over the limit of 1000000 bytes" in error.message
    small = fetcher.fetch(FetchRequest("GET", server.url("/bytes?size=5000&gzip=1")))
    assert small.body == b"\0" * 5000 and small.headers["content-encoding"] == "gzip"


def test_a_server_that_does_not_answer_in_time_is_a_timeout(server: HttpTarget, fetcher: SafeFetcher) -> None:
    started = time.monotonic()
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", server.url("/slow?delay=3"),
                                                      timeouts=FetchTimeouts(read_s=0.3))), FetchTimeout)
    assert time.monotonic() - started < 2
    assert error.message == "127.0.0.1 sent nothing for 0.3 s (timeouts.read_s)"


def test_a_trickle_is_cut_by_the_total_timeout(server: HttpTarget, fetcher: SafeFetcher) -> None:
    started = time.monotonic()
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", server.url("/drip?every=0.1&count=100"),
                                                      timeouts=FetchTimeouts(read_s=1, total_s=0.5))), FetchTimeout)
    assert time.monotonic() - started < 2
    assert "longer than 0.5 s in all (timeouts.total_s" in error.message
    # A single wait never outlasts the whole budget either.
    started = time.monotonic()
    error = _fails(lambda: fetcher.fetch(FetchRequest("GET", server.url("/slow?delay=3"),
                                                      timeouts=FetchTimeouts(read_s=60, total_s=0.3))), FetchTimeout)
    assert time.monotonic() - started < 2
    assert error.message == "127.0.0.1 sent nothing for 0.3 s (timeouts.total_s)"


def test_a_connection_that_never_opens_is_a_connect_timeout(fetcher: SafeFetcher) -> None:
    # A listener whose accept queue is full: Linux drops further SYNs, so connecting hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            started = time.monotonic()
            error = _fails(lambda: fetcher.fetch(FetchRequest("GET", f"http://127.0.0.1:{port}/",
                                                              timeouts=FetchTimeouts(connect_s=0.3))), FetchTimeout)
            assert time.monotonic() - started < 2
        finally:
            for filler in fillers:
                filler.close()
    assert error.message == "could not connect to 127.0.0.1 within 0.3 s (timeouts.connect_s)"


# --- the fetch function's contract ----------------------------------------------------------------


def _invoke_handler(event: Any) -> dict[str, Any]:
    from functions.workflows.fetch import handler

    answer = handler(event, LocalContext("workflow-fetch", 512, 900))
    # What Lambda would send back: JSON, whole.
    return dict(json.loads(json.dumps(answer)))


def test_the_handler_answers_a_response_in_its_wire_form(server: HttpTarget) -> None:
    request = FetchRequest("POST", server.url("/echo"), headers=[("Content-Type", "text/plain")],
                           params=[("a", "1")], body="héllo".encode(), timeouts=FetchTimeouts(5, 5, 5))
    answer = _invoke_handler(request.to_json())
    assert answer["ok"] is True
    assert set(answer["response"]) == {"status_code", "headers", "body", "url"}
    response = from_answer(answer)
    echo = _echo(response)
    assert echo["query"] == [["a", "1"]] and base64.b64decode(echo["body"]) == "héllo".encode()
    assert response.url == server.url("/echo?a=1")


def test_the_handler_answers_errors_as_data(server: HttpTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fetch function's policy is the deployment's: STRATUS_EGRESS_ALLOW, here narrowed to nothing.
    monkeypatch.setenv("STRATUS_EGRESS_ALLOW", "")
    reset_settings()
    try:
        answer = _invoke_handler(FetchRequest("GET", server.url("/echo")).to_json())
    finally:
        monkeypatch.undo()
        reset_settings()
    assert answer == {"ok": False, "error": {
        "code": "http_request_refused", "rule": "loopback", "host": "127.0.0.1",
        "message": "127.0.0.1 is not an allowed destination: loopback address (egress rule 'loopback'). If the "
                   "workflow must reach it, ask the operator to add the host to STRATUS_EGRESS_ALLOW."}}
    assert server.requests == []
    with pytest.raises(FetchRefused):
        from_answer(answer)
    for event, field in (({"url": "http://x"}, "request.method is required"),
                         ({"method": "GET", "url": "http://x", "body": "not base64!"}, "request.body"),
                         ({"method": "GET", "url": "http://x", "headers": [["a"]]}, "request.headers"),
                         ({"method": "BREW", "url": "http://x"}, "method must be one of"),
                         ([], "request must be an object")):
        answer = _invoke_handler(event)
        assert answer["ok"] is False and answer["error"]["code"] == "http_request_failed", event
        assert field in answer["error"]["message"], answer


def test_the_handler_caps_a_body_at_what_a_lambda_answer_can_carry(server: HttpTarget) -> None:
    size = LAMBDA_MAX_BODY_BYTES + 100_000
    answer = _invoke_handler(FetchRequest("GET", server.url(f"/bytes?size={size}"),
                                          max_response_bytes=10 * 1024 * 1024).to_json())
    assert answer["ok"] is False and answer["error"]["code"] == "http_request_response_too_large"
    assert f"over {LAMBDA_MAX_BODY_BYTES} bytes, the most a response can carry back" in answer["error"]["message"]
    # Under the cap the whole body comes back, and the answer fits Lambda's 6 MB.
    fits = _invoke_handler(FetchRequest("GET", server.url(f"/bytes?size={LAMBDA_MAX_BODY_BYTES}"),
                                        max_response_bytes=10 * 1024 * 1024).to_json())
    assert len(from_answer(fits).body) == LAMBDA_MAX_BODY_BYTES
    assert len(json.dumps(fits)) < 6_000_000


@pytest.fixture(scope="module")
def fake_lambda() -> Iterator[FakeLambda]:
    with FakeLambda() as fake:
        yield fake


def test_the_lambda_fetcher_round_trips_through_the_fetch_function(server: HttpTarget,
                                                                   fake_lambda: FakeLambda) -> None:
    from functions.workflows.fetch import handler

    fake_lambda.serve("workflow-fetch", handler)
    remote = LambdaFetcher(fake_lambda.client, "workflow-fetch")
    body = bytes(range(256))
    response = remote.fetch(FetchRequest("PUT", server.url("/echo"), body=body, params=[("k", "v")],
                                         headers=[("X-Run", "r1")]))
    echo = _echo(response)
    assert echo["method"] == "PUT" and base64.b64decode(echo["body"]) == body
    assert _header(echo, "X-Run") == ["r1"] and echo["query"] == [["k", "v"]]
    invocation = fake_lambda.invocations[-1]
    assert invocation.function == "workflow-fetch" and invocation.invocation_type == "RequestResponse"
    sent = json.loads(invocation.payload)
    assert sent["body"] == base64.b64encode(body).decode() and sent["max_response_bytes"] == 10 * 1024 * 1024
    # The function's error answers come back as the same errors.
    with pytest.raises(FetchTimeout, match=r"sent nothing for 0\.2 s"):
        remote.fetch(FetchRequest("GET", server.url("/slow?delay=2"), timeouts=FetchTimeouts(read_s=0.2)))
    with pytest.raises(FetchRefused) as refused:
        remote.fetch(FetchRequest("GET", "http://169.254.169.254/latest/meta-data/"))
    assert refused.value.rule == "metadata" and refused.value.host == "169.254.169.254"
    # Over what a Lambda answer carries, though under the node's limit: said as such.
    with pytest.raises(FetchTooLarge, match="the most a response can carry back from the fetch function"):
        remote.fetch(FetchRequest("GET", server.url(f"/bytes?size={LAMBDA_MAX_BODY_BYTES + 1}")))


def test_the_lambda_fetcher_refuses_a_body_lambda_would_not_take(fake_lambda: FakeLambda) -> None:
    fake_lambda.serve("limits", Reply(200, {"ok": True, "response": FetchResponse(200, {}, b"", "http://x/").to_json()}))
    remote = LambdaFetcher(fake_lambda.client, "limits")
    assert remote.fetch(FetchRequest("POST", "http://x/", body=b"a" * 4_000_000)).status_code == 200
    calls = len(fake_lambda.invocations)
    error = _fails(lambda: remote.fetch(FetchRequest("POST", "http://x/", body=b"a" * 5_000_000)), FetchFailed)
    assert "over the 6000000 bytes a request to the fetch function may be" in error.message
    assert len(fake_lambda.invocations) == calls, "refused before the call"


@pytest.mark.parametrize(("reply", "kind", "says"), [
    (Reply(200, {"errorType": "Sandbox.Timedout",
                 "errorMessage": "RequestId: 1 Error: Task timed out after 900.00 seconds"},
           function_error="Unhandled"),
     FetchTimeout, "the fetch function ran out of time"),
    (Reply(200, {"errorType": "Function.ResponseSizeTooLarge", "errorMessage": "Response payload size exceeded"},
           function_error="Unhandled"),
     FetchTooLarge, "Lambda's 6 MB payload limit"),
    (Reply(200, {"errorType": "Runtime.OutOfMemory", "errorMessage": "Runtime exited with error: signal: killed"},
           function_error="Unhandled"),
     FetchFailed, "the fetch function failed: Runtime.OutOfMemory: Runtime exited with error: signal: killed"),
    (Reply(429, {"Type": "User", "message": "Rate Exceeded."}, error_type="TooManyRequestsException"),
     FetchFailed, "could not be invoked: TooManyRequestsException: Rate Exceeded."),
    (Reply(200, b"<html>not json</html>"), FetchFailed, "not JSON"),
    (Reply(200, {"status": "fine"}), FetchFailed, "not a fetch answer (answer.ok must be true or false)"),
    (Reply(200, {"ok": False, "error": {"code": "http_request_unknown_kind", "message": "new"}}), FetchError, "new"),
])
def test_lambda_level_failures_are_fetch_errors(fake_lambda: FakeLambda, reply: Reply, kind: type[FetchError],
                                                says: str) -> None:
    fake_lambda.serve("failing", reply)
    with pytest.raises(FetchError) as info:
        LambdaFetcher(fake_lambda.client, "failing").fetch(FetchRequest("GET", "http://example.com/"))
    assert type(info.value) is kind
    assert says in info.value.message


def test_a_missing_fetch_function_or_unreachable_lambda_is_a_failed_fetch(fake_lambda: FakeLambda) -> None:
    error = _fails(lambda: LambdaFetcher(fake_lambda.client, "nobody").fetch(FetchRequest("GET", "http://x/")),
                   FetchFailed)
    assert "ResourceNotFoundException: Function not found: nobody" in error.message

    def unreachable() -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("lambda", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                            aws_access_key_id="t", aws_secret_access_key="t",
                            config=Config(connect_timeout=1, retries={"max_attempts": 1}))

    error = _fails(lambda: LambdaFetcher(unreachable, "workflow-fetch").fetch(FetchRequest("GET", "http://x/")),
                   FetchFailed)
    assert error.message.startswith("the fetch function could not be reached")


# --- wiring ---------------------------------------------------------------------------------------


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    reset_settings()


def test_the_container_fetches_in_process_unless_the_fetch_function_is_named(
        server: HttpTarget, settings_env: pytest.MonkeyPatch) -> None:
    settings_env.delenv("WORKFLOW_FETCH_FUNCTION_NAME", raising=False)
    # As `STRATUS_EGRESS_ALLOW=... make dev` runs: the local runtime's functions read it.
    settings_env.setenv("STRATUS_EGRESS_ALLOW", "127.0.0.1")
    reset_settings()
    local = http_fetcher()
    assert isinstance(local, SafeFetcher) and local is safe_fetcher() and local is http_fetcher()
    assert local.policy == EgressPolicy.parse("127.0.0.1")
    assert local.fetch(FetchRequest("GET", server.url("/multi"))).status_code == 200
    settings_env.setenv("STRATUS_EGRESS_ALLOW", "")
    reset_settings()
    with pytest.raises(FetchRefused):
        http_fetcher().fetch(FetchRequest("GET", server.url("/multi")))
    settings_env.setenv("WORKFLOW_FETCH_FUNCTION_NAME", "stratus-dev-WorkflowFetch")
    reset_settings()
    remote = http_fetcher()
    assert isinstance(remote, LambdaFetcher) and remote.function_name == "stratus-dev-WorkflowFetch"
    assert http_fetcher() is remote
