"""Fetching a photo or voice note named by a URL in an inbound payload, without becoming a proxy
into the plant's network (SSRF).

A payload can name any URL, so a URL is fetched only when it passes the channel's
`MediaPolicy`: over https from the platform's media hosts (Slack `files.slack.com`,
Telegram `api.telegram.org`, WhatsApp `graph.facebook.com` / `lookaside.fbsbx.com`; the
bridge: any host), or from the origin an operator configured for the channel (its
`*_API_URL`, the bridge's callback URL), which is trusted as it stands (a proxy, a test fake).
For every other host the name is resolved once, each address must be public (no loopback,
private, link-local such as the cloud metadata address 169.254.169.254, shared, multicast,
reserved or unspecified address) and the connection goes to the address that was checked,
so a DNS answer that changes between check and connect cannot slip through. Redirects are
followed by hand (at most `MAX_REDIRECTS`), each one checked again; the credentials go only to
the host they were meant for. The body is cut off past `max_bytes`, the whole fetch past
`timeout` seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

MAX_MEDIA = 20 * 1024 * 1024  # bytes; Telegram bots may download at most 20 MB
TIMEOUT = 30.0  # seconds for the whole fetch, redirects included
MAX_REDIRECTS = 3
SLACK_HOSTS = frozenset({"files.slack.com"})
TELEGRAM_HOSTS = frozenset({"api.telegram.org"})
WHATSAPP_HOSTS = frozenset({"graph.facebook.com", "lookaside.fbsbx.com"})


class FetchRefused(Exception):
    """The URL, an address it resolves to, a redirect or the size is not allowed; nothing was stored."""


Origin = tuple[str, str, int]  # scheme, host, port


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of a URL, or None when it has no host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    return scheme, host, port or (443 if scheme == "https" else 80)


@dataclass(frozen=True)
class MediaLimits:
    """How much and how long one fetch may take (`MFGOS_MEDIA_MAX_BYTES`, `MFGOS_MEDIA_TIMEOUT`)."""

    max_bytes: int = MAX_MEDIA
    timeout: float = TIMEOUT

    @classmethod
    def from_settings(cls, settings: Any) -> MediaLimits:
        return cls(max_bytes=settings.media_max_bytes, timeout=settings.media_timeout)


@dataclass(frozen=True)
class MediaPolicy:
    """Where one channel may fetch media from; `hosts=None` allows any public https host (the bridge)."""

    hosts: frozenset[str] | None
    trusted: frozenset[Origin] = frozenset()
    max_bytes: int = MAX_MEDIA
    timeout: float = TIMEOUT

    @classmethod
    def for_channel(cls, hosts: frozenset[str] | None, configured_url: str | None,
                    limits: MediaLimits = MediaLimits()) -> MediaPolicy:
        """The platform's media hosts plus the origin of the URL an operator configured (the platform
        itself, a proxy or a test fake), with the configured limits."""
        origin = origin_of(configured_url or "")
        trusted = frozenset({origin}) if origin is not None else frozenset()
        return cls(hosts=hosts, trusted=trusted, max_bytes=limits.max_bytes, timeout=limits.timeout)


def public_address(address: str) -> bool:
    """True for an address on the public internet (IPv4-mapped IPv6 judged as the IPv4 it carries)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int) -> list[str]:
    """The addresses a name resolves to (one lookup; tests replace this function)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host once, refuses non-public addresses and connects to the address it checked."""

    def __init__(self, trusted: frozenset[tuple[str, int]]) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.trusted = trusted

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None, socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        if (host.lower(), port) in self.trusted:
            address = host
        else:
            try:
                addresses = await resolve(host, port)
            except OSError as error:
                raise FetchRefused(f"{host} does not resolve: {error}") from error
            refused = [a for a in addresses if not public_address(a)]
            if not addresses or refused:
                raise FetchRefused(f"{host} resolves to an address that is not public ({', '.join(refused) or 'none'})")
            address = addresses[0]
        return await self.inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                            socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        raise FetchRefused("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool whose every connection goes through `_CheckedBackend`."""

    def __init__(self, backend: _CheckedBackend) -> None:
        super().__init__()
        # httpx takes no network backend; its pool does (the same pool httpx would build, no proxy).
        self._pool = httpcore.AsyncConnectionPool(ssl_context=httpx.create_ssl_context(), network_backend=backend)


def _allowed(url: str, policy: MediaPolicy, first: bool) -> Origin:
    origin = origin_of(url)
    if origin is None:
        raise FetchRefused("not an http(s) URL with a host")
    if origin in policy.trusted:
        return origin
    if origin[0] != "https":
        raise FetchRefused(f"only https is fetched, not {origin[0]}")
    if first and policy.hosts is not None and origin[1] not in policy.hosts:
        raise FetchRefused(f"{origin[1]} is not one of the platform's media hosts")
    return origin


async def fetch_media(url: str, policy: MediaPolicy, headers: dict[str, str] | None = None) -> tuple[bytes, str | None]:
    """(bytes, the server's content type) of `url` under `policy`; FetchRefused when not allowed."""
    try:
        async with asyncio.timeout(policy.timeout):
            return await _fetch(url, policy, headers or {})
    except TimeoutError as error:
        raise FetchRefused(f"no answer within {policy.timeout} s") from error


async def _fetch(url: str, policy: MediaPolicy, headers: dict[str, str]) -> tuple[bytes, str | None]:
    origin = _allowed(url, policy, first=True)
    backend = _CheckedBackend(frozenset((host, port) for _, host, port in policy.trusted))
    async with httpx.AsyncClient(transport=_CheckedTransport(backend), trust_env=False, follow_redirects=False,
                                 timeout=policy.timeout) as client:
        for _ in range(MAX_REDIRECTS + 1):
            async with client.stream("GET", url, headers=headers) as response:
                if response.is_redirect:
                    target = str(response.url.join(response.headers.get("location", "")))
                    next_origin = _allowed(target, policy, first=False)
                    if next_origin[1] != origin[1]:
                        headers = {}  # credentials stay with the host they were given for
                    url, origin = target, next_origin
                    continue
                response.raise_for_status()
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > policy.max_bytes:
                    raise FetchRefused(f"{declared} bytes is more than the {policy.max_bytes} allowed")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > policy.max_bytes:
                        raise FetchRefused(f"more than the {policy.max_bytes} bytes allowed")
                return bytes(body), response.headers.get("content-type")
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")

