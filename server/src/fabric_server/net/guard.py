"""Which addresses the server may call on behalf of a user (server-side request forgery guard).

Webhooks (and later the workflow `http.request` node) send requests to URLs that users type
in. Without a guard such a URL could reach the server's own network: a database on
`10.0.0.5`, a cloud metadata service on `169.254.169.254`, an admin port on `127.0.0.1`.

The guard is applied twice:

* `check_url` when a URL is stored: the scheme, credentials, length, and a host written as an
  address (in any notation `inet_aton` accepts, such as `127.1` or `2130706433`) or as a
  loopback name (`localhost`, `*.localhost`). No DNS lookup happens here.
* `check_address` on every address a host name resolves to, right before connecting (see
  `fabric_server.net.http`), so a name that later starts pointing inside (DNS rebinding) is
  still refused, and the connection goes to the address that was checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
# NAT64 (RFC 6052) embeds an IPv4 address in the last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class BlockedAddress(ValueError):
    """The URL or address may not be called (the message says why, for the user)."""


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses; False for private, loopback,
    link-local, multicast, reserved, unspecified and shared ranges (IPv4 and IPv6, including
    IPv4 addresses wrapped in IPv6)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)  # a connection goes to the IPv4 address
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def parse_host_address(host: str) -> IPAddress | None:
    """The address a URL host denotes without DNS, or None when it is a name.

    Besides the canonical forms this accepts what C resolvers accept for IPv4 (`127.1`,
    `0x7f.0.0.1`, `2130706433`), since those reach the same place when connected to.
    """
    literal = host.strip("[]")
    try:
        return ipaddress.ip_address(literal.split("%", 1)[0])
    except ValueError:
        pass
    if literal and all(c in "0123456789abcdefxABCDEFX." for c in literal):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(literal))
        except OSError:
            return None
    return None


def _is_loopback_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


@dataclass
class AddressGuard:
    """Policy for outbound calls.

    `allow_private` lets private and loopback targets through (dev mode default).
    `allowed_networks`, when not empty, is an allow-list every address must fall in (tests pin
    deliveries to loopback with it); it applies on top of `allow_private`.
    """

    allow_private: bool = False
    allowed_networks: list[IPNetwork] = field(default_factory=list)

    @classmethod
    def build(cls, *, allow_private: bool, allowed_networks: Iterable[str] = ()) -> AddressGuard:
        networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]
        return cls(allow_private=allow_private, allowed_networks=networks)

    def check_url(self, url: str, *, names: bool = True) -> None:
        """Refuse URLs that are malformed or written to point at a refused address.

        `names=False` skips the loopback-name rule, for callers that resolve the name and
        check each address next (`OutboundClient`).
        """
        if len(url) > MAX_URL_LENGTH:
            raise BlockedAddress(f"the URL is longer than {MAX_URL_LENGTH} characters")
        if any(c.isspace() or ord(c) < 32 for c in url):
            raise BlockedAddress("the URL contains whitespace or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise BlockedAddress(f"the URL is not valid ({exc})") from None
        if parts.scheme not in ("http", "https"):
            raise BlockedAddress("the URL must start with http:// or https://")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise BlockedAddress("the URL must not carry credentials (user:password@)")
        host = parts.hostname
        if not host:
            raise BlockedAddress("the URL has no host")
        if port == 0:
            raise BlockedAddress("the URL's port must be between 1 and 65535")
        address = parse_host_address(host)
        if address is not None:
            self.check_address(address, host)
        elif names and _is_loopback_name(host) and not self.allow_private:
            raise BlockedAddress(
                f"{host} is a loopback name; private and loopback targets are not allowed"
            )

    def check_address(self, address: IPAddress, host: str | None = None) -> None:
        """Refuse an address this policy does not allow (called after DNS resolution)."""
        shown = str(address) if host is None or host == str(address) else f"{host} ({address})"
        if not self.allow_private and not is_public(address):
            raise BlockedAddress(
                f"{shown} is a private, loopback, link-local or reserved address; "
                "such targets are not allowed on this server"
            )
        if self.allowed_networks:
            mapped = embedded_ipv4(address) or address
            if not any(mapped in net or address in net for net in self.allowed_networks):
                raise BlockedAddress(f"{shown} is outside the networks this server may call")
