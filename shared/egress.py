"""The egress policy for URLs a tenant supplies (model endpoints today; tools, HTTP-request
nodes and MCP servers next): what the platform may connect to on a tenant's behalf.

Functions run inside the VPC, where a URL can reach the metadata service, the database, the
cache and the functions' own endpoints. A tenant-supplied URL is therefore refused when its
host is, or resolves to, a loopback, private, link-local, unique-local, CGNAT, multicast,
unspecified, reserved or metadata address, in any spelling (``2130706433``, ``0x7f.1``,
``::ffff:127.0.0.1``, ``64:ff9b::a00:1``...), unless ``STRATUS_EGRESS_ALLOW`` lists the host or
a network holding the address (docs/adr/0030-egress-policy.md).

It is checked twice:

- on the URL when it is saved (:meth:`EgressPolicy.check_url`): literal addresses and
  ``localhost`` are refused at once, with the rule named;
- on every connection (:func:`guarded_transport`, :func:`guarded_async_transport` for async
  clients such as the MCP SDK's): the host is resolved once, every address
  checked, and the socket connects to the checked address, not to the name again, so DNS
  rebinding cannot swap it between check and connect (TLS still verifies, and SNI and
  ``Host`` still name, the original host). Every request, each redirect included, goes
  through the same transport and so through the same checks.

The module is domain-neutral: it raises :class:`EgressRefused` (or what the caller's
``refused`` factory makes of it, e.g. ``model_endpoint_forbidden``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses the name resolves to (a port: tests hand in their own).
Resolver = Callable[[str, int], list[str]]

_SCHEMES = ("http", "https")


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# First match names the rule; the order puts the most specific reason first.
_RULES: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    # Instance metadata (EC2 IMDS over IPv4 and IPv6, the ECS/Lambda container credentials).
    ("metadata", _nets("169.254.169.254/32", "169.254.170.2/32", "fd00:ec2::254/128")),
    ("unspecified", _nets("0.0.0.0/8", "::/128")),
    ("loopback", _nets("127.0.0.0/8", "::1/128")),
    ("link_local", _nets("169.254.0.0/16", "fe80::/10")),
    ("private", _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fec0::/10")),
    ("unique_local", _nets("fc00::/7")),
    ("cgnat", _nets("100.64.0.0/10")),
    ("multicast", _nets("224.0.0.0/4", "ff00::/8")),
    ("broadcast", _nets("255.255.255.255/32")),
)
# IPv6 forms that carry an IPv4 address in their low 32 bits: the IPv4 address is what a
# packet may end up at, so it is what gets checked.
_IPV4_IN_IPV6 = _nets("::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "::/96")
# ... except ``::`` and ``::1``, which are IPv6's own unspecified and loopback addresses.
_IPV6_OWN = ipaddress.ip_network("::/127")
# Dotted-quad relatives that inet_aton (and so getaddrinfo) reads as IPv4: 2130706433,
# 0177.0.0.1, 0x7f.1, 127.1.
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


class EgressRefused(Exception):
    """A URL or address the policy refuses; ``rule`` names why (``loopback``, ``metadata``...)."""

    def __init__(self, rule: str, host: str, address: str | None = None) -> None:
        self.rule = rule
        self.host = host
        self.address = address
        where = host if address is None or address == host else f"{host} ({address})"
        reason = _REASONS.get(rule) or f"{rule.replace('_', '-')} address"
        super().__init__(f"{where} is not an allowed destination: {reason}")

    @property
    def reason(self) -> str:
        return str(self)


_REASONS = {"scheme": "only http and https URLs are allowed", "invalid_url": "not a valid URL"}


def parse_address(host: str) -> IPAddress | None:
    """The IP address ``host`` spells (brackets, zone ids and legacy IPv4 forms included),
    or None for a name."""
    text = host.strip().lower().removeprefix("[").removesuffix("]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _IPV4_IN_IPV6) and address not in _IPV6_OWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_rule(address: IPAddress) -> str | None:
    """The rule that refuses ``address`` (None: a public address)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return address_rule(inner)
    for rule, networks in _RULES:
        if any(address in net for net in networks if net.version == address.version):
            return rule
    # Whatever else is not globally routable (documentation, benchmarking, 240/4...).
    return None if address.is_global else "reserved"


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True)
class EgressPolicy:
    """Refuses non-public destinations except those allow-listed by host name (``*.name``
    for its subdomains) or by network (CIDR or a single address)."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, allow: str | Iterable[str]) -> EgressPolicy:
        """From ``STRATUS_EGRESS_ALLOW``'s form: comma-separated hosts and CIDRs."""
        entries = allow.split(",") if isinstance(allow, str) else list(allow)
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = _normal_host(raw)
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.removeprefix("[").replace("]", ""), strict=False))
            except ValueError:
                if not re.fullmatch(r"(\*\.)?[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", entry):
                    raise ValueError(f"STRATUS_EGRESS_ALLOW: {raw.strip()!r} is neither a host nor a CIDR") from None
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    # --- what is allowed ---

    def host_allowed(self, host: str) -> bool:
        name = _normal_host(host)
        return name in self.allowed_hosts or any(
            entry.startswith("*.") and name.endswith(entry[1:]) for entry in self.allowed_hosts)

    def address_allowed(self, address: IPAddress) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and (inner := _embedded_ipv4(address)) is not None:
            candidates.append(inner)
        return any(a in net for a in candidates for net in self.allowed_networks if net.version == a.version)

    def check_address(self, host: str, address: IPAddress) -> None:
        if self.address_allowed(address):
            return
        rule = address_rule(address)
        if rule is not None:
            raise EgressRefused(rule, host, str(address))

    # --- checks ---

    def check_url(self, url: str) -> None:
        """The URL as saved: scheme, and the host when it is an address or a local name. A
        name is checked again, resolved, on every connection."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise EgressRefused("invalid_url", url) from None
        if parts.scheme.lower() not in _SCHEMES:
            raise EgressRefused("scheme", url)
        if not host:
            raise EgressRefused("invalid_url", url)
        self.check_host(host)

    def check_host(self, host: str) -> None:
        """A host as a request names it (no resolution)."""
        if self.host_allowed(host):
            return
        address = parse_address(host)
        if address is not None:
            self.check_address(host, address)
            return
        name = _normal_host(host)
        if name in _LOCAL_NAMES or name.endswith(".localhost"):
            raise EgressRefused("loopback", host)

    def resolve(self, host: str, port: int, resolver: Resolver | None = None) -> list[str]:
        """The addresses to connect to for ``host``, each checked; one refused address refuses
        the host (a name that also points inside is not a public name)."""
        address = parse_address(host)
        if address is not None:
            if not self.host_allowed(host):
                self.check_address(host, address)
            return [str(address)]
        self.check_host(host)
        found = (resolver or system_resolver)(host, port)
        if not self.host_allowed(host):
            for item in found:
                parsed = parse_address(item)
                if parsed is None:  # a resolver that answers with something else
                    raise EgressRefused("invalid_url", host, item)
                self.check_address(host, parsed)
        return found


def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo's addresses, in its order, without repeats."""
    seen: dict[str, None] = {}
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


@lru_cache(maxsize=4)
def _policy_for(allow: str) -> EgressPolicy:
    return EgressPolicy.parse(allow)


def egress_policy() -> EgressPolicy:
    """The deployment's policy (``STRATUS_EGRESS_ALLOW``)."""
    from shared.config import get_settings

    return _policy_for(get_settings().stratus_egress_allow)


# --- httpx2 -------------------------------------------------------------------------------


def guarded_transport(policy: EgressPolicy, *, refused: Callable[[EgressRefused], Exception] | None = None,
                      resolver: Resolver | None = None) -> httpx2.BaseTransport:
    """An httpx2 transport that enforces ``policy`` on every request (redirects included) and
    every connection (resolved once, connected to the checked address). ``refused`` turns a
    refusal into the caller's error; the SDKs pass non-HTTP exceptions through unwrapped."""
    return _transport_class()(policy, refused or (lambda exc: exc), resolver or system_resolver)


@lru_cache(maxsize=1)
def _transport_class() -> type[Any]:
    # Built on first use: httpx2 and httpcore2 load only in functions that call out.
    import httpcore2
    import httpx2

    class PinnedBackend(httpcore2.SyncBackend):
        def __init__(self, policy: EgressPolicy, refused: Callable[[EgressRefused], Exception],
                     resolver: Resolver) -> None:
            self._policy = policy
            self._refused = refused
            self._resolver = resolver

        def _resolve(self, host: str, port: int) -> list[str]:
            try:
                return self._policy.resolve(host, port, self._resolver)
            except EgressRefused as exc:
                raise self._refused(exc) from None
            except OSError as exc:  # the name does not resolve: a connection failure like any
                raise httpcore2.ConnectError(str(exc)) from exc

        def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                        local_address: str | None = None,
                        socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
            failure: Exception | None = None
            for address in self._resolve(host, port):
                try:
                    # The checked address, never the name: no second lookup to rebind.
                    return super().connect_tcp(address, port, timeout, local_address, socket_options)
                except httpcore2.ConnectError as exc:
                    failure = exc
            raise failure or httpcore2.ConnectError(f"{host} resolves to no address")

    class GuardedTransport(httpx2.HTTPTransport):
        def __init__(self, policy: EgressPolicy, refused: Callable[[EgressRefused], Exception],
                     resolver: Resolver, limits: httpx2.Limits | None = None) -> None:
            # Not HTTPTransport.__init__: its pool would connect through the default backend
            # (and honour proxy settings, which would bypass the checks).
            limits = limits or httpx2.Limits(max_connections=100, max_keepalive_connections=20)
            self._policy = policy
            self._refused = refused
            self._pool = httpcore2.ConnectionPool(
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=PinnedBackend(policy, refused, resolver))

        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            # Every request the client sends, each redirect's included: its scheme and a
            # literal or local host are refused before any connection is looked for.
            try:
                if request.url.scheme not in _SCHEMES:
                    raise EgressRefused("scheme", str(request.url))
                self._policy.check_host(request.url.host)
            except EgressRefused as exc:
                raise self._refused(exc) from None
            return super().handle_request(request)

    return GuardedTransport


def guarded_client_kwargs(policy: EgressPolicy, *,
                          refused: Callable[[EgressRefused], Exception] | None = None) -> dict[str, Any]:
    """Keyword arguments for an httpx2 client (an SDK's ``DefaultHttpxClient``) that goes
    through the policy: the guarded transport, and no proxies from the environment (a proxy
    would make the connection, and reach what the policy refuses)."""
    return {"transport": guarded_transport(policy, refused=refused), "trust_env": False}


def guarded_async_transport(policy: EgressPolicy, *,
                            refused: Callable[[EgressRefused], Exception] | None = None,
                            resolver: Resolver | None = None) -> httpx2.AsyncBaseTransport:
    """:func:`guarded_transport` for an ``httpx2.AsyncClient`` (the MCP SDK's): the same checks
    on every request and every connection; the name is resolved once (in a worker thread,
    getaddrinfo blocks) and the socket connects to the checked address."""
    return _async_transport_class()(policy, refused or (lambda exc: exc), resolver or system_resolver)


@lru_cache(maxsize=1)
def _async_transport_class() -> type[Any]:
    import anyio.to_thread
    import httpcore2
    import httpx2

    class PinnedAsyncBackend(httpcore2.AsyncNetworkBackend):
        def __init__(self, policy: EgressPolicy, refused: Callable[[EgressRefused], Exception],
                     resolver: Resolver) -> None:
            self._policy = policy
            self._refused = refused
            self._resolver = resolver
            self._backend = httpcore2.AnyIOBackend()

        async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                              local_address: str | None = None,
                              socket_options: Iterable[Any] | None = None) -> httpcore2.AsyncNetworkStream:
            try:
                addresses = await anyio.to_thread.run_sync(self._policy.resolve, host, port, self._resolver)
            except EgressRefused as exc:
                raise self._refused(exc) from None
            except OSError as exc:
                raise httpcore2.ConnectError(str(exc)) from exc
            failure: Exception | None = None
            for address in addresses:
                try:
                    # The checked address, never the name: no second lookup to rebind.
                    return await self._backend.connect_tcp(address, port, timeout=timeout,
                                                           local_address=local_address,
                                                           socket_options=socket_options)
                except httpcore2.ConnectError as exc:
                    failure = exc
            raise failure or httpcore2.ConnectError(f"{host} resolves to no address")

        async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                      socket_options: Iterable[Any] | None = None) -> httpcore2.AsyncNetworkStream:
            raise httpcore2.ConnectError("unix sockets are not an allowed destination")

        async def sleep(self, seconds: float) -> None:
            await self._backend.sleep(seconds)

    class GuardedAsyncTransport(httpx2.AsyncHTTPTransport):
        def __init__(self, policy: EgressPolicy, refused: Callable[[EgressRefused], Exception],
                     resolver: Resolver, limits: httpx2.Limits | None = None) -> None:
            # As GuardedTransport: no proxies, every connection through the pinned backend.
            limits = limits or httpx2.Limits(max_connections=100, max_keepalive_connections=20)
            self._policy = policy
            self._refused = refused
            self._pool = httpcore2.AsyncConnectionPool(
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=PinnedAsyncBackend(policy, refused, resolver))

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            try:
                if request.url.scheme not in _SCHEMES:
                    raise EgressRefused("scheme", str(request.url))
                self._policy.check_host(request.url.host)
            except EgressRefused as exc:
                raise self._refused(exc) from None
            return await super().handle_async_request(request)

    return GuardedAsyncTransport
