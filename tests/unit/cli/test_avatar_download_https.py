"""The shapes.inc avatar download over https, against a local TLS server with a throwaway CA.

The download trusts what production trusts: the system's CAs as OpenSSL finds them, here
SSL_CERT_FILE naming the throwaway CA; verification is never loosened for the test. The
server stands on loopback for a public host: `resolve` maps its names to 127.0.0.1 and
`allow` lets that one origin through (test_avatar_download.py does the same over http).
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tzurot.cli.avatar_download import Refused, download
from tzurot.runtime.tls import generate_dev_pki

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
CAP = 1024
TOO_BIG = b"\0" * (4 * CAP)
NAME = "avatar.test"
"""The name the server's certificate carries (and the link uses)."""


@dataclass
class Seen:
    """What the server was asked: TLS server names (SNI) and Host headers."""

    server_names: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


def _handler(seen: Seen, redirect_to: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.hosts.append(self.headers.get("Host", ""))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", redirect_to)
                self.end_headers()
                return
            body = TOO_BIG if self.path.startswith("/big") else PNG
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            if self.path != "/big-unannounced":  # else: read until the connection closes
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hung up (a refused download, a refused certificate): expected


@dataclass
class HttpsSite:
    port: int
    seen: Seen

    @property
    def origin(self) -> str:
        return f"{NAME}:{self.port}"

    def get(self, path: str, *, name: str = NAME) -> tuple[bytes, str]:
        """`download` of https://<name>:<port><path>, `name` resolving to the server."""
        return download(
            f"https://{name}:{self.port}{path}",
            max_bytes=CAP,
            timeout=10.0,
            allow=frozenset({f"{name}:{self.port}"}),
            resolve=lambda host, port: ["127.0.0.1"],
        )


def _pki(folder: Path) -> Path:
    """A throwaway CA and a server certificate for NAME (and localhost) under it."""
    generate_dev_pki(folder, ["avatars"], hosts=(NAME,))
    return folder


@pytest.fixture(scope="module")
def trusted_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pki(tmp_path_factory.mktemp("trusted-ca"))


@pytest.fixture(scope="module")
def untrusted_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pki(tmp_path_factory.mktemp("untrusted-ca"))


@pytest.fixture
def serve(trusted_pki: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., HttpsSite]]:
    """Starts https servers (certificate from `pki`, default the trusted CA's); the download
    trusts the trusted CA through SSL_CERT_FILE, as an operator's machine would."""
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted_pki / "ca" / "ca.crt"))
    running: list[QuietServer] = []

    def start(pki: Path = trusted_pki, redirect_to: str = "") -> HttpsSite:
        seen = Seen()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf = pki / "avatars"
        context.load_cert_chain(leaf / "tls.crt", leaf / "tls.key")

        def record_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
            seen.server_names.append(name)

        context.sni_callback = record_sni
        httpd = QuietServer(("127.0.0.1", 0), _handler(seen, redirect_to))
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        running.append(httpd)
        return HttpsSite(httpd.server_address[1], seen)

    yield start
    for httpd in running:
        httpd.shutdown()
        httpd.server_close()


def test_an_image_over_https_is_downloaded_with_the_name_kept(
    serve: Callable[..., HttpsSite],
) -> None:
    """The connection goes to the checked address; TLS (SNI, verification) and Host still
    name the host of the link."""
    site = serve()
    assert site.get("/a.png") == (PNG, "image/png")
    assert site.seen.server_names == [NAME]
    assert site.seen.hosts == [site.origin]


@pytest.mark.parametrize("path", ["/big-announced", "/big-unannounced"])
def test_an_image_over_the_cap_is_refused(serve: Callable[..., HttpsSite], path: str) -> None:
    """Refused on its Content-Length, or once the bytes read pass the cap."""
    site = serve()
    with pytest.raises(Refused, match="larger than"):
        site.get(path)


def test_a_redirect_on_the_same_site_is_followed(serve: Callable[..., HttpsSite]) -> None:
    site = serve(redirect_to="/a.png")
    assert site.get("/redirect") == (PNG, "image/png")
    assert site.seen.server_names == [NAME, NAME]


def test_a_redirect_to_another_host_is_checked_again_and_refused(
    serve: Callable[..., HttpsSite],
) -> None:
    """The first host is let through (a public host in real life); the one it redirects to
    resolves to loopback, is not let through, and is refused before anything connects."""
    internal = serve()
    site = serve(redirect_to=f"https://internal.test:{internal.port}/a.png")
    with pytest.raises(Refused, match="private, local or metadata"):
        site.get("/redirect")
    assert site.seen.hosts == [site.origin]
    assert internal.seen.server_names == internal.seen.hosts == []


def test_a_certificate_from_an_untrusted_ca_is_refused(
    serve: Callable[..., HttpsSite], untrusted_pki: Path
) -> None:
    site = serve(untrusted_pki)
    with pytest.raises(Refused, match="certificate does not verify"):
        site.get("/a.png")
    assert site.seen.hosts == []


def test_a_certificate_for_another_name_is_refused(serve: Callable[..., HttpsSite]) -> None:
    """Trusted CA, but the certificate does not name the host of the link."""
    site = serve()
    with pytest.raises(Refused, match="certificate does not verify"):
        site.get("/a.png", name="elsewhere.test")
    assert site.seen.hosts == []
