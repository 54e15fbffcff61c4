"""Webhook URL safety (SSRF): https only, and never an address inside a private network.

Checked at registration and again at every send, and the send connects to
the very address that was checked (no second DNS lookup a rebinding attacker
could answer differently).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

Resolver = Callable[[str, int], list[str]]
MAX_URL_CHARS = 2048
_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


class UnsafeUrl(ValueError):
    """A webhook URL that is refused; the message names why (never an internal detail)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (a public IP, or loopback on the local stack)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _public(address.ipv4_mapped)
    # is_global excludes private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback,
    # link-local (169.254/16: the metadata server), shared (100.64/10), reserved.
    return address.is_global and not address.is_multicast


def check_url(url: str, *, localhost_allowed: bool, resolve: Resolver = system_resolver) -> Target:
    """The URL's connect target if it is safe to call; UnsafeUrl naming the problem if not."""
    if len(url) > MAX_URL_CHARS:
        raise UnsafeUrl(f"the URL is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("the URL is malformed") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeUrl("the URL must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("the URL must not carry a user or password")
    if parts.fragment:
        raise UnsafeUrl("the URL must not have a #fragment")
    is_local = localhost_allowed and host in _LOCAL_NAMES
    if parts.scheme == "http" and not is_local:
        raise UnsafeUrl("the URL must use https")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host, port)
    if not addresses:
        raise UnsafeUrl("the URL's host does not resolve")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if is_local and address.is_loopback:
            continue
        if not _public(address):
            raise UnsafeUrl("the URL's host resolves to a private, loopback or link-local address")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, addresses[0])
