"""Connecting to the address that was checked.

A host name resolved once to check its address and again to connect can
answer differently the second time (DNS rebinding): a public address for
the check, then ``127.0.0.1`` for the connection. So the link checker
resolves each host once, checks what it got, and connects to that address:
the request goes to the IP, while the ``Host`` header, the TLS server name
(SNI) and the certificate check keep the host name.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from requests.adapters import HTTPAdapter

#: Resolves a host name to its IP addresses, in the order to try them.
Resolver = Callable[[str], list[str]]


def system_resolver(host: str) -> list[str]:
    """The host's addresses from the system's resolver (``getaddrinfo``)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [info[4][0].split("%", 1)[0] for info in infos]


def _ascii_host(host: str) -> str:
    """The host name as DNS and TLS carry it (IDNA for non-ASCII names)."""
    return host if host.isascii() else host.encode("idna").decode("ascii")


class PinnedAdapter(HTTPAdapter):
    """A transport for requests to an IP address that stand for ``hostname``:
    TLS sends ``hostname`` as the server name and checks the certificate
    against it. (The ``Host`` header is the caller's, see :func:`pinned`.)"""

    def __init__(self, hostname: str) -> None:
        super().__init__(max_retries=0)
        self.hostname = hostname

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> tuple[dict, dict]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.hostname
            pool_kwargs["assert_hostname"] = self.hostname
        return host_params, pool_kwargs


def pinned(url: str, address: str) -> tuple[str, dict[str, str], PinnedAdapter]:
    """``url`` sent to ``address``: the URL with the IP in place of the
    host, the ``Host`` header naming the host, and the transport to mount
    for it."""
    parts = urlsplit(url)
    host = _ascii_host(parts.hostname or "")
    ip = ipaddress.ip_address(address)
    port = f":{parts.port}" if parts.port else ""
    target = urlunsplit(parts._replace(netloc=(f"[{ip}]" if ip.version == 6 else str(ip)) + port))
    shown = f"[{host}]" if ":" in host else host
    return target, {"Host": shown + port}, PinnedAdapter(host)
