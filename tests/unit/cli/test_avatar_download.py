"""The CLI's shapes.inc avatar download follows inference's rules for user-chosen URLs
(review 158 L3): nothing private, a redirect checked again, one deadline for the whole
download; an allowed (here: loopback, standing in for a public host) image still comes."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from tzurot.cli.avatar_download import Refused, download
from tzurot.cli.shapes_import import download_avatar

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


class Handler(http.server.BaseHTTPRequestHandler):
    redirect_to = ""

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_allowed_image_is_downloaded(server: str) -> None:
    data, kind = download_avatar(f"http://{server}/a.png", allow=frozenset({server}))
    assert (data, kind) == (PNG, "image/png")


def test_loopback_and_metadata_addresses_are_refused(server: str) -> None:
    assert download_avatar(f"http://{server}/a.png") == (b"", "")
    with pytest.raises(Refused, match="private, local or metadata"):
        download("http://169.254.169.254/latest/meta-data/", max_bytes=1024, timeout=1.0)


def test_a_redirect_to_a_private_address_is_refused(server: str) -> None:
    """The first hop is allowed (a public host in real life); where it redirects, loopback,
    is checked again and refused."""
    port = server.rsplit(":", 1)[1]
    Handler.redirect_to = f"http://{server}/internal.png"

    def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    with pytest.raises(Refused, match="private, local or metadata"):
        download(
            f"http://outer.test:{port}/redirect",
            max_bytes=1024,
            allow=frozenset({f"outer.test:{port}"}),
            resolve=resolve,
        )


def test_a_slow_drip_runs_out_of_time(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(Refused, match="in time"):
        download(f"http://{server}/drip", max_bytes=1024, timeout=1.0, allow=frozenset({server}))
    assert time.monotonic() - started < 3
