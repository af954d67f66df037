"""Where the server's own outgoing requests may go: webhooks, and simulated `action.http` steps when
`PHONEFLOW_SIMULATE_LIVE_HTTP=true`. Both go to a URL an account wrote.

* Link-local addresses (where cloud metadata services answer), the unspecified address and
  multicast: never.
* Loopback, private and reserved addresses (`127.0.0.1`, `10.0.0.0/8`, `192.168.0.0/16`, ...):
  only when the operator sets `PHONEFLOW_WEBHOOK_ALLOW_PRIVATE_TARGETS=true` (off by default: an
  account could otherwise make the server call services of its own network and read their answers).

A name is resolved once, every address it resolves to is checked, and the request goes to a checked
address (`GuardedTransport`, `resolve_target`): a name that resolves to a public address when
checked and to a private one when connecting (DNS rebinding) does not get through. An IPv6 address
is judged with the IPv4 address it carries too.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

# Never a target, whatever the settings: link-local addresses are where cloud metadata services
# answer (169.254.169.254, fd00:ec2::254 aside) and no receiver lives; the unspecified address and
# multicast are no one host.
_NEVER_TARGETS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("::/128"),
    ipaddress.ip_network("224.0.0.0/4"),
    ipaddress.ip_network("ff00::/8"),
    ipaddress.ip_network("255.255.255.255/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
ALLOW_PRIVATE_SETTING = "PHONEFLOW_WEBHOOK_ALLOW_PRIVATE_TARGETS"
ALLOW_PRIVATE_HINT = (
    f"the server refuses them unless its operator sets {ALLOW_PRIVATE_SETTING}=true "
    "(then webhooks and simulated action.http steps may reach its own network: only where every "
    "account is trusted); otherwise give a public address"
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def reached_addresses(address: IPAddress) -> list[IPAddress]:
    """`address` and the IPv4 address an IPv6 one carries on to (IPv4-mapped or -compatible, 6to4,
    Teredo, NAT64): `::ffff:127.0.0.1` reaches 127.0.0.1, whatever `is_global` says of the IPv6 form."""
    if not isinstance(address, ipaddress.IPv6Address):
        return [address]
    embedded: IPAddress | None = address.ipv4_mapped or address.sixtofour
    if embedded is None and address.teredo is not None:
        embedded = address.teredo[1]
    if embedded is None and (address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1)):
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return [address] if embedded is None else [address, embedded]


def address_refusal(host: str, address: IPAddress, allow_private: bool) -> str | None:
    """Why the server may not send to `address` (what `host` resolved to), or None when it may."""
    where = f"{host} is" if host.strip("[]") == str(address) else f"{host} resolves to {address},"
    for reached in reached_addresses(address):
        if any(reached in network for network in _NEVER_TARGETS):
            return (
                f"{where} a link-local, unspecified or multicast address "
                "(where cloud metadata services answer): the server never sends there; "
                "give the receiver's public or private address instead"
            )
        if not allow_private and not reached.is_global:
            what = "a private, loopback or reserved address"
            return f"{where} {what}: {ALLOW_PRIVATE_HINT}"
    return None


def literal_refusal(url: str, allow_private: bool) -> str | None:
    """Why `url`, when its host is an address written out, may not be a target (None: it may, or the
    host is a name, judged when a request resolves it). Written out includes the forms a resolver reads
    as numbers without asking DNS (`127.1`, `0x7f000001`, `2130706433`) and `localhost` and
    `*.localhost`, which are loopback by definition (RFC 6761)."""
    try:
        hostname = urlsplit(url).hostname
    except ValueError:
        return None
    if not hostname:
        return None
    bare = hostname.split("%", 1)[0].rstrip(".")
    if bare == "localhost" or bare.endswith(".localhost"):
        return address_refusal(hostname, ipaddress.ip_address("127.0.0.1"), allow_private)
    try:
        addresses = [ipaddress.ip_address(bare)]
    except ValueError:
        try:  # the IPv4 forms a resolver reads as a number (inet_aton), never a DNS question
            addresses = [ipaddress.IPv4Address(socket.inet_aton(bare))]
        except (OSError, UnicodeError, ValueError):
            return None  # a name
    for address in addresses:
        refusal = address_refusal(hostname, address, allow_private)
        if refusal is not None:
            return refusal
    return None


def resolve_target(url: httpx.URL, allow_private: bool) -> tuple[list[IPAddress], str | None]:
    """The addresses to connect to for `url`, checked, or why there are none: (addresses, None) or
    ([], why).

    Every address the name resolves to is checked (one bad address refuses the URL), and the request
    then goes to those very addresses (the first that takes the connection): a name that resolves to
    a public address when checked and to a private one when connecting (DNS rebinding) cannot slip
    past the check."""
    host = url.host
    try:
        infos = socket.getaddrinfo(url.raw_host.decode("ascii"), url.port or 0, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return [], f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}"
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        refusal = address_refusal(host, address, allow_private)
        if refusal is not None:
            return [], refusal
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        return [], f"cannot resolve {host}: no address"
    return addresses, None


class RefusedTarget(httpx.TransportError):
    """The request was not sent: its URL's host is (or resolves to) an address the server may not
    reach. Its text says why and what would allow it."""


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that sends each request only to a checked address of its URL's host
    (`resolve_target`), with the host in `Host` and, over https, in the TLS server name; the next
    checked address when one refuses the connection. A refused host raises `RefusedTarget`."""

    def __init__(self, allow_private: bool, inner: httpx.BaseTransport | None = None) -> None:
        self.allow_private = allow_private
        self.inner = inner if inner is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = request.url
        addresses, refusal = resolve_target(target, self.allow_private)
        if not addresses:
            raise RefusedTarget(f"not sent: {refusal}", request=request)
        extensions = dict(request.extensions)
        if target.scheme == "https":
            extensions["sni_hostname"] = target.raw_host.decode("ascii")
        headers = httpx.Headers(request.headers)
        headers["host"] = target.netloc.decode("ascii")
        for address in addresses:
            pinned = httpx.Request(
                request.method,
                target.copy_with(host=str(address)),
                headers=headers,
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return self.inner.handle_request(pinned)
            except httpx.ConnectError:
                if address == addresses[-1]:
                    raise  # the name's last address refused too: that is the request's error
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def close(self) -> None:
        self.inner.close()
