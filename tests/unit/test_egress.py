"""The egress policy for tenant URLs (shared/egress.py): every refused address class in every
spelling, the allow-list by host and by network, resolution pinned to the checked address,
and redirects checked like the first request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest

from shared.egress import EgressPolicy, EgressRefused, address_rule, guarded_transport, parse_address

OPEN = EgressPolicy()


@pytest.mark.parametrize(("host", "rule"), [
    ("127.0.0.1", "loopback"),
    ("127.9.9.9", "loopback"),
    ("[::1]", "loopback"),
    ("localhost", "loopback"),
    ("api.localhost", "loopback"),
    ("LOCALHOST.", "loopback"),
    # Legacy IPv4 spellings getaddrinfo reads as 127.0.0.1.
    ("2130706433", "loopback"),
    ("0177.0.0.1", "loopback"),
    ("0x7f.0.0.1", "loopback"),
    ("0x7f000001", "loopback"),
    ("127.1", "loopback"),
    ("10.0.0.5", "private"),
    ("172.16.3.4", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("012.0.0.1", "private"),  # octal 10.0.0.1
    ("169.254.10.1", "link_local"),
    ("[fe80::1]", "link_local"),
    ("[fe80::1%25eth0]", "link_local"),
    ("169.254.169.254", "metadata"),
    ("2852039166", "metadata"),  # decimal 169.254.169.254
    ("0xa9.0xfe.0xa9.0xfe", "metadata"),
    ("0251.0376.0251.0376", "metadata"),
    ("[fd00:ec2::254]", "metadata"),
    ("169.254.170.2", "metadata"),
    ("[fc00::1]", "unique_local"),
    ("[fd12:3456::1]", "unique_local"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.254", "cgnat"),
    ("224.0.0.251", "multicast"),
    ("[ff02::1]", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - a destination refused, not a bind
    ("0", "unspecified"),
    ("[::]", "unspecified"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.10", "reserved"),
    ("240.0.0.1", "reserved"),
    # IPv6 forms that carry an IPv4 address: the IPv4 address decides.
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:7f00:1]", "loopback"),
    ("[::ffff:169.254.169.254]", "metadata"),
    ("[::ffff:10.1.2.3]", "private"),
    ("[::ffff:0:a9fe:a9fe]", "metadata"),
    ("[64:ff9b::a9fe:a9fe]", "metadata"),
    ("[2002:a9fe:a9fe::1]", "metadata"),
    ("[::127.0.0.1]", "loopback"),
])
def test_internal_destinations_are_refused_with_their_rule(host: str, rule: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        OPEN.check_host(host)
    assert refused.value.rule == rule
    assert rule.replace("_", "-") in refused.value.reason
    with pytest.raises(EgressRefused) as on_url:
        OPEN.check_url(f"http://{host}:8080/v1")
    assert on_url.value.rule == rule


@pytest.mark.parametrize("host", ["api.openai.com", "8.8.8.8", "[2606:4700:4700::1111]", "1.1.1.1",
                                  "[::ffff:8.8.8.8]", "localhost.example.com", "deadbeef"])
def test_public_destinations_pass(host: str) -> None:
    OPEN.check_host(host)
    OPEN.check_url(f"https://{host}/v1")


@pytest.mark.parametrize(("url", "rule"), [
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com/", "scheme"),
    ("ftp://example.com/", "scheme"),
    ("http://[::1/", "invalid_url"),
    ("http://example.com:99999/", "invalid_url"),
    ("http:///v1", "invalid_url"),
])
def test_urls_that_are_not_http_to_a_host_are_refused(url: str, rule: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        OPEN.check_url(url)
    assert refused.value.rule == rule


def test_parse_address_reads_every_spelling() -> None:
    assert str(parse_address("2130706433")) == "127.0.0.1"
    assert str(parse_address("0x7f.1")) == "127.0.0.1"
    assert str(parse_address("[fe80::1%eth0]")) == "fe80::1"
    assert parse_address("example.com") is None
    assert parse_address("08.0.0.1") is None  # not octal: a name, resolved (and checked) later
    assert address_rule(parse_address("93.184.216.34")) is None  # type: ignore[arg-type]


def test_allow_list_by_host() -> None:
    policy = EgressPolicy.parse(" Ollama.internal , *.corp.example ")
    policy.check_url("http://ollama.internal:11434/v1")
    policy.check_url("http://OLLAMA.internal./v1")
    policy.check_url("http://llm.corp.example/v1")
    inside = lambda host, port: ["10.0.0.7"]  # noqa: E731
    assert policy.resolve("llm.corp.example", 80, inside) == ["10.0.0.7"]
    for name in ("corp.example.evil", "corp.example", "evilcorp.example"):  # subdomains only
        with pytest.raises(EgressRefused):
            policy.resolve(name, 80, inside)
    # A listed name connects wherever it resolves, private addresses included.
    assert policy.resolve("ollama.internal", 80, inside) == ["10.0.0.7"]
    # Another name resolving there is still refused.
    with pytest.raises(EgressRefused) as refused:
        policy.resolve("other.example", 80, inside)
    assert (refused.value.rule, refused.value.address) == ("private", "10.0.0.7")


def test_allow_list_by_network() -> None:
    policy = EgressPolicy.parse("10.20.0.0/16,127.0.0.1,fd00:1::/64")
    policy.check_url("http://10.20.3.4/v1")
    policy.check_url("http://127.0.0.1:8080/v1")
    policy.check_url("http://2130706433/v1")  # the same address, spelled otherwise
    policy.check_url("http://[::ffff:10.20.0.1]/v1")  # mapped: the IPv4 address is listed
    policy.check_url("http://[fd00:1::5]/v1")
    for host, rule in (("10.21.0.1", "private"), ("127.0.0.2", "loopback"), ("localhost", "loopback"),
                       ("169.254.169.254", "metadata"), ("[fd00:2::1]", "unique_local")):
        with pytest.raises(EgressRefused) as refused:
            policy.check_url(f"http://{host}/v1")
        assert refused.value.rule == rule
    # Resolution: a name whose addresses are all in a listed network passes.
    assert policy.resolve("svc.example", 443, lambda host, port: ["10.20.0.9"]) == ["10.20.0.9"]


def test_allow_list_entries_are_validated() -> None:
    assert EgressPolicy.parse("") == EgressPolicy()
    assert EgressPolicy.parse(" , ") == EgressPolicy()
    with pytest.raises(ValueError, match="neither a host nor a CIDR"):
        EgressPolicy.parse("http://example.com")
    with pytest.raises(ValueError, match="STRATUS_EGRESS_ALLOW"):
        EgressPolicy.parse("10.0.0.0/33")


def test_setting_is_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from shared.config import Settings

    monkeypatch.setenv("STRATUS_EGRESS_ALLOW", "10.0.0.0/8, ollama.internal")
    assert Settings().stratus_egress_allow == "10.0.0.0/8, ollama.internal"
    monkeypatch.setenv("STRATUS_EGRESS_ALLOW", "not a host!")
    with pytest.raises(ValidationError, match="stratus_egress_allow"):
        Settings()


def test_a_name_is_refused_when_any_of_its_addresses_is_internal() -> None:
    resolver = lambda host, port: ["93.184.216.34", "169.254.169.254"]  # noqa: E731
    with pytest.raises(EgressRefused) as refused:
        OPEN.resolve("rebind.example", 443, resolver)
    assert (refused.value.rule, refused.value.host, refused.value.address) == (
        "metadata", "rebind.example", "169.254.169.254")
    # IPv4-mapped answers are read as what they map.
    with pytest.raises(EgressRefused):
        OPEN.resolve("rebind.example", 443, lambda host, port: ["::ffff:127.0.0.1"])
    assert OPEN.resolve("public.example", 443, lambda host, port: ["93.184.216.34"]) == ["93.184.216.34"]


# --- the httpx2 transport -------------------------------------------------------------------


class _Redirecting(BaseHTTPRequestHandler):
    """``/to?<url>`` answers 307 to that URL; anything else 200 ``ok``."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/to?"):
            self.send_response(307)
            self.send_header("Location", self.path.removeprefix("/to?"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"ok {self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _client(policy: EgressPolicy, **kw: Any) -> httpx2.Client:
    return httpx2.Client(transport=guarded_transport(policy, **kw), follow_redirects=True, trust_env=False)


def test_transport_refuses_before_connecting(origin: str) -> None:
    with _client(OPEN) as client, pytest.raises(EgressRefused) as refused:
        client.get(origin)
    assert refused.value.rule == "loopback"
    with _client(EgressPolicy.parse("127.0.0.1")) as client:
        assert client.get(origin).text.startswith("ok 127.0.0.1")


@pytest.mark.parametrize(("target", "rule"), [
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://10.0.0.1/", "private"),
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://2852039166/", "metadata"),
    ("http://localhost/", "loopback"),
])
def test_redirects_are_checked_like_the_first_request(origin: str, target: str, rule: str) -> None:
    with _client(EgressPolicy.parse("127.0.0.1")) as client, pytest.raises(EgressRefused) as refused:
        client.get(f"{origin}/to?{target}")
    assert refused.value.rule == rule


def test_a_redirect_to_a_name_resolving_inside_is_refused(origin: str) -> None:
    port = origin.rsplit(":", 1)[1]
    names = {"inside.example": ["10.1.2.3"], "self.example": ["127.0.0.1"]}
    resolver = lambda host, _port: names[host]  # noqa: E731
    policy = EgressPolicy.parse("127.0.0.1")
    with _client(policy, resolver=resolver) as client, pytest.raises(EgressRefused) as refused:
        client.get(f"{origin}/to?http://inside.example:{port}/")
    assert (refused.value.rule, refused.value.address) == ("private", "10.1.2.3")
    # A name resolving to an allowed address is followed, connecting to that address while
    # the request still names the host.
    with _client(policy, resolver=resolver) as client:
        assert client.get(f"{origin}/to?http://self.example:{port}/").text == f"ok self.example:{port}"


def test_connections_go_to_the_checked_address_not_a_second_lookup(origin: str) -> None:
    """DNS rebinding: the resolver answers once; a second lookup (which would answer an
    internal address) never happens, and the socket goes to the first answer."""
    port = origin.rsplit(":", 1)[1]
    answers = [["127.0.0.1"], ["169.254.169.254"]]
    calls: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        calls.append(host)
        return answers[len(calls) - 1]

    with _client(EgressPolicy.parse("127.0.0.1"), resolver=resolver) as client:
        assert client.get(f"http://rebind.example:{port}/").text == f"ok rebind.example:{port}"
    assert calls == ["rebind.example"]


def test_refusals_become_the_callers_error(origin: str) -> None:
    class Forbidden(Exception):
        pass

    def refused(exc: EgressRefused) -> Exception:
        return Forbidden(exc.rule)

    with _client(OPEN, refused=refused) as client, pytest.raises(Forbidden, match="loopback"):
        client.get(origin)
    with _client(OPEN, refused=refused, resolver=lambda h, p: ["10.0.0.1"]) as client, \
            pytest.raises(Forbidden, match="private"):
        client.get("http://somewhere.example/")


def test_unresolvable_names_are_connection_errors() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with _client(OPEN, resolver=resolver) as client, pytest.raises(httpx2.ConnectError):
        client.get("http://nowhere.example/")
