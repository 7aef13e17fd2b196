"""A shapes.inc backup's avatar, downloaded by the operator's CLI under inference's rules
for user-chosen URLs (skills/egress.py; review 158 L3).

The URL comes from a backup file a user hands to the operator, and the image becomes the
personality's public avatar, so: http(s) only, no credentials, ports 80 and 443; the host is
resolved once and every address must be public (not private, loopback, link-local, CGNAT,
multicast, reserved or a metadata address; IPv6 that carries an IPv4 judged by it), and the
connection goes to that checked address (Host and TLS SNI keep the name); at most 3
redirects, each checked again; one deadline for the whole download (a server dripping a byte
at a time does not hold the import); at most `max_bytes`. https is verified against the
system's CAs as OpenSSL finds them (SSL_CERT_FILE, SSL_CERT_DIR), never skipped. Standard
library only.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200")
) | {ipaddress.ip_address("fd00:ec2::254")}
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 64 * 1024


class Refused(Exception):
    """The avatar is not downloaded; the message says why."""


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.is_site_local:
            return False
        carried = [address.sixtofour, address.teredo[1] if address.teredo else None]
        if any(inner is not None and not is_public(inner) for inner in carried):
            return False
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and address not in METADATA_ADDRESSES
    )


def system_resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def download(
    url: str,
    *,
    timeout: float = 15.0,
    max_bytes: int,
    allow: frozenset[str] = frozenset(),
    resolve: Callable[[str, int], list[str]] = system_resolve,
) -> tuple[bytes, str]:
    """(body, content type) at `url`; Refused saying why not. `allow`: "host:port" origins
    that may be private (tests only)."""
    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise Refused("only http and https links are downloaded")
        if parts.username or parts.password:
            raise Refused("links with credentials are not downloaded")
        host = (parts.hostname or "").rstrip(".").lower()
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise Refused("the link has an invalid port") from None
        if not host:
            raise Refused("the link has no host")
        address = _checked(host, port, resolve, allow)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        status, location, kind, data = _get(
            parts.scheme,
            host,
            port=port,
            address=address,
            path=path,
            deadline=deadline,
            max_bytes=max_bytes,
        )
        if status in REDIRECTS:
            if not location:
                raise Refused("the site redirected without a location")
            url = urljoin(url, location)
            continue
        if status >= 400:  # HTTP's error range
            raise Refused(f"the site answered HTTP {status}")
        return data, kind
    raise Refused(f"more than {MAX_REDIRECTS} redirects")


def _checked(
    host: str, port: int, resolve: Callable[[str, int], list[str]], allow: frozenset[str]
) -> IpAddress:
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            found = resolve(host, port)
        except OSError:
            raise Refused(f"the host {host} does not resolve") from None
        addresses = []
        for raw in found:
            try:
                addresses.append(ipaddress.ip_address(raw.split("%", 1)[0]))
            except ValueError:
                continue
    if not addresses:
        raise Refused(f"the host {host} does not resolve")
    if f"{host}:{port}" in allow:
        return addresses[0]
    if not all(is_public(address) for address in addresses):
        raise Refused("the link points to a private, local or metadata address")
    if port not in (80, 443):
        raise Refused(f"only ports 80 and 443 are reached, not {port}")
    return sorted(addresses, key=lambda a: a.version)[0]


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Refused("the download did not finish in time")
    return left


def _get(
    scheme: str,
    host: str,
    *,
    port: int,
    address: IpAddress,
    path: str,
    deadline: float,
    max_bytes: int,
) -> tuple[int, str, str, bytes]:
    """(status, location, content type, body) from `address`, the request naming `host`."""
    try:
        sock = socket.create_connection((str(address), port), timeout=_left(deadline))
    except OSError:
        raise Refused("the site could not be reached") from None
    try:
        if scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        connection = http.client.HTTPConnection(host, port, timeout=_left(deadline))
        connection.sock = sock  # already connected to the checked address
        named = f"[{host}]" if ":" in host else host
        shown = named if port == (443 if scheme == "https" else 80) else f"{named}:{port}"
        connection.request("GET", path, headers={"Host": shown, "User-Agent": "tzurot-cli"})
        response = connection.getresponse()
        kind = response.headers.get_content_type()
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise Refused(f"the image is larger than {max_bytes // (1024 * 1024)} MiB")
        data = bytearray()
        while response.status not in REDIRECTS:
            sock.settimeout(_left(deadline))
            piece = response.read1(CHUNK)
            if not piece:
                break
            data += piece
            if len(data) > max_bytes:
                raise Refused(f"the image is larger than {max_bytes // (1024 * 1024)} MiB")
        return response.status, response.headers.get("Location", ""), kind, bytes(data)
    except ssl.SSLCertVerificationError:  # an OSError too: named apart, it is no outage
        raise Refused("the site's certificate does not verify") from None
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, TimeoutError):
            raise Refused("the download did not finish in time") from None
        raise Refused("the site could not be reached") from None
    finally:
        sock.close()
