"""Outgoing fetches for skills (read_url, web_research), safe against SSRF by design.

Every hop of a fetch:
- only `http` and `https`, no credentials in the URL;
- the host is resolved once; every address it resolves to must be public (not private,
  loopback, link-local, CGNAT, multicast, reserved, unspecified or a cloud metadata
  address; IPv4-mapped IPv6 is judged as the IPv4 it maps), and the connection goes to
  that checked address (the URL is rewritten to the IP, `Host` and TLS SNI keep the name,
  so the certificate is still verified for the name): no DNS rebinding between check and
  connect;
- only ports 80 and 443 (inference's NetworkPolicy lets no other out), refused at once;
- every checked address is tried in turn, IPv4 first, each connection within 5 s (a cluster
  without IPv6 egress does not wait out the deadline on a name's AAAA record);
- redirects are followed by hand (at most `max_redirects`), each one checked again;
- the declared type must be one the caller reads, the size is capped while streaming, and
  the whole fetch has one deadline.

`allow` (`TZUROT_SKILL_FETCH_ALLOW`) names "host:port" origins that may be private, for
tests against local pages; it is empty by default. Proxies from the environment are never
used (they would connect somewhere else than the checked address).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx2 as httpx

from tzurot.inference.skills.base import SkillError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Awaitable[list[str]]]

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
"""Cloud metadata endpoints (AWS/GCP/Azure, ECS, Alibaba, AWS IPv6): refused even if public."""

REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchRefused(SkillError):
    """The link cannot be read safely (or at all); the message says why, for the model."""


@dataclass(frozen=True)
class EgressPolicy:
    max_bytes: int = 2 * 1024 * 1024
    timeout: float = 15.0
    max_redirects: int = 3
    allow: frozenset[str] = frozenset()
    """"host:port" origins that may be private (tests only; empty by default)."""
    user_agent: str = "TzurotBot/1.0 (+read_url)"


@dataclass(frozen=True)
class Fetched:
    url: str
    """The final URL, after redirects."""
    content_type: str
    data: bytes


async def system_resolve(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver, looked up once."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise FetchRefused(f"the host {host} does not resolve") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


WEB_PORTS = frozenset({80, 443})
CONNECT_SECONDS = 5.0
"""One address's connection at most, so the next one resolved is still tried in time."""


def is_public(address: IpAddress) -> bool:
    """Whether connecting to `address` stays out of private networks and metadata services.
    IPv6 that carries an IPv4 address (mapped, 6to4, Teredo's client) is judged by it too."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.is_site_local:
            return False
        else:
            carried = [address.sixtofour, address.teredo[1] if address.teredo else None]
            if any(inner is not None and not is_public(inner) for inner in carried):
                return False
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and address not in METADATA_ADDRESSES
    )


def _mime(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


class SafeFetcher:
    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolve: Resolve = system_resolve,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolve
        self._transport = transport

    def with_max_bytes(self, max_bytes: int) -> SafeFetcher:
        """The same fetcher (rules, resolver, transport) with another size limit (an image
        is allowed more than a page)."""
        return SafeFetcher(
            dataclasses.replace(self._policy, max_bytes=max_bytes),
            resolve=self._resolve,
            transport=self._transport,
        )

    async def fetch(self, url: str, *, accept: frozenset[str]) -> Fetched:
        """The body at `url`, of one of the `accept`ed types; FetchRefused saying why not."""
        try:
            async with asyncio.timeout(self._policy.timeout):
                return await self._follow(url, accept)
        except TimeoutError:
            raise FetchRefused(f"the page did not load within {self._policy.timeout:g} s") from None

    async def _follow(self, url: str, accept: frozenset[str]) -> Fetched:
        timeout = self._policy.timeout
        async with httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_SECONDS, timeout)),
            transport=self._transport,
        ) as client:
            for _ in range(self._policy.max_redirects + 1):
                targets, headers, extensions = await self._checked(url)
                response = await self._connect(client, targets, headers, extensions)
                try:
                    if response.status_code in REDIRECTS:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchRefused("the site redirected without a location")
                        url = urljoin(url, location)
                        continue
                    return await self._body(url, response, accept)
                finally:
                    await response.aclose()
        raise FetchRefused(f"more than {self._policy.max_redirects} redirects")

    async def _connect(
        self,
        client: httpx.AsyncClient,
        targets: list[str],
        headers: dict[str, str],
        extensions: dict[str, str],
    ) -> httpx.Response:
        """The response from the first of `targets` that takes the connection: an address
        that cannot be reached (an AAAA where IPv6 egress is closed) gives way to the next."""
        for target in targets:
            request = client.build_request("GET", target, headers=headers, extensions=extensions)
            try:
                return await client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                continue  # nothing was sent: the next address
            except httpx.HTTPError:
                raise FetchRefused("the site could not be reached") from None
        raise FetchRefused("the site could not be reached")

    async def _checked(self, url: str) -> tuple[list[str], dict[str, str], dict[str, str]]:
        """The URL rewritten to each checked address (IPv4 first), with the Host header and
        SNI for them."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchRefused("only http and https links can be read")
        if parts.username or parts.password:
            raise FetchRefused("links with credentials are not read")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise FetchRefused("the link has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchRefused("the link has an invalid port") from None
        addresses = self._checked_addresses(host, port, await self._addresses(host, port))
        targets = []
        for address in sorted(addresses, key=lambda a: a.version):  # IPv4 egress is the open one
            shown = f"[{address}]" if address.version == 6 else str(address)
            path = parts.path or "/"
            targets.append(urlunsplit((parts.scheme, f"{shown}:{port}", path, parts.query, "")))
        default = port == (443 if parts.scheme == "https" else 80)
        named = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
        headers = {
            "Host": named if default else f"{named}:{port}",
            "User-Agent": self._policy.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/pdf,text/plain;q=0.9,*/*;q=0.1",
        }
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return targets, headers, extensions

    async def _addresses(self, host: str, port: int) -> list[IpAddress]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        found = await self._resolve(host, port)
        addresses: list[IpAddress] = []
        for raw in found:
            try:
                addresses.append(ipaddress.ip_address(raw.split("%", 1)[0]))
            except ValueError:
                continue
        if not addresses:
            raise FetchRefused(f"the host {host} does not resolve")
        return addresses

    def _checked_addresses(
        self, host: str, port: int, addresses: list[IpAddress]
    ) -> list[IpAddress]:
        """The addresses to connect to: every one must be public, on port 80 or 443 (the only
        ones inference's NetworkPolicy lets out: another would wait out the whole deadline),
        unless the origin is allowed."""
        if f"{host}:{port}" in self._policy.allow:
            return addresses
        for address in addresses:
            if not is_public(address):
                raise FetchRefused(
                    "refused: the link points to a private, local or metadata address"
                )
        if port not in WEB_PORTS:
            raise FetchRefused(f"refused: only ports 80 and 443 can be reached, not {port}")
        return addresses

    async def _body(self, url: str, response: httpx.Response, accept: frozenset[str]) -> Fetched:
        if response.status_code >= 400:  # HTTP's error range
            raise FetchRefused(f"the site answered HTTP {response.status_code}")
        mime = _mime(response.headers.get("content-type", ""))
        if mime not in accept:
            raise FetchRefused(f"the link is {mime or 'of an unknown type'}, which is not readable")
        limit = self._policy.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchRefused(f"the page is larger than {limit // 1024} KiB")
        data = bytearray()
        async for piece in response.aiter_bytes():
            data += piece
            if len(data) > limit:
                raise FetchRefused(f"the page is larger than {limit // 1024} KiB")
        return Fetched(
            url=url, content_type=response.headers.get("content-type", ""), data=bytes(data)
        )
