"""The web as skills see it, on loopback: pages to read, and search engines.

- `LocalPages`: an HTML article, a PDF, a plain text file, a redirect to a private address,
  a redirect chain, a huge body, a slow body, a page of a type that is not readable. Each
  request is recorded (so a test can prove a refused address was never contacted).
- `FakeSearxng`: SearXNG's `GET /search?q=…&format=json` (403 when `json` is not among the
  instance's formats, as a default SearXNG answers; 400 without a query).
- `FakeBrave`: Brave Search's `GET /res/v1/web/search` with `X-Subscription-Token`
  (422 SUBSCRIPTION_TOKEN_INVALID for an unknown token, 429 with X-RateLimit headers when
  over the rate, `count` at most 20, `q` at most 400 characters and 50 words).
Results point at pages registered with `add_result`; a result added `for_query` is the
engine's answer to that query alone (other queries get the results added without one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

ARTICLE_HTML = """<!doctype html>
<html><head><title>{title}</title></head>
<body>
<nav>Home | About | Contact</nav>
<article>
<h1>{title}</h1>
<p>{body}</p>
<p>Reported by the Loopback Gazette, which checks every fact twice before printing it.</p>
</article>
<footer>Copyright the Loopback Gazette</footer>
</body></html>
"""


def minimal_pdf(text: str) -> bytes:
    """A valid one-page PDF whose page shows `text` (Helvetica), with a correct xref."""
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


class _Server:
    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None

    @property
    def origin(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        response: web.StreamResponse = await handler(request)
        return response

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class LocalPages(_Server):
    """Pages for read_url; `articles` maps a path to (title, body)."""

    def __init__(self, *, huge_bytes: int = 8 * 1024 * 1024, slow_seconds: float = 30.0) -> None:
        super().__init__()
        self.articles: dict[str, tuple[str, str]] = {
            "/article": (
                "Moon base opens",
                "The first lunar research base opened on 3 November 2026 with a crew of six.",
            )
        }
        self.pdf_text = "Quarterly report: revenue grew by 12 percent."
        self.huge_bytes = huge_bytes
        self.slow_seconds = slow_seconds
        self.private_target = "http://10.0.0.1/secret"

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/article/{rest:.*}", self._article)
        app.router.add_get("/article", self._article)
        app.router.add_get("/report.pdf", self._pdf)
        app.router.add_get("/notes.txt", self._text)
        app.router.add_get("/to-private", self._to_private)
        app.router.add_get("/hop/{n}", self._hop)
        app.router.add_get("/huge", self._huge)
        app.router.add_get("/huge-undeclared", self._huge_undeclared)
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/binary", self._binary)

    async def _article(self, request: web.Request) -> web.StreamResponse:
        title, body = self.articles.get(request.path, self.articles["/article"])
        return web.Response(
            text=ARTICLE_HTML.format(title=title, body=body), content_type="text/html"
        )

    async def _pdf(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=minimal_pdf(self.pdf_text), content_type="application/pdf")

    async def _text(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="Plain notes: the meeting moved to Thursday.")

    async def _to_private(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(self.private_target)

    async def _hop(self, request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        if n <= 0:
            raise web.HTTPFound("/article")
        raise web.HTTPFound(f"/hop/{n - 1}")

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"a" * self.huge_bytes, content_type="text/plain")

    async def _huge_undeclared(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        block = b"b" * 65536
        sent = 0
        try:
            while sent < self.huge_bytes:
                await response.write(block)
                sent += len(block)
        except ConnectionError:
            return response
        await response.write_eof()
        return response

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"first bytes ")
        await asyncio.sleep(self.slow_seconds)
        await response.write_eof()
        return response

    async def _binary(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\x00\x01", content_type="application/octet-stream")


@dataclass
class SearchResult:
    title: str
    url: str
    snippet: str
    for_query: str = ""


@dataclass
class _Results:
    results: list[SearchResult] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    def add_result(self, title: str, url: str, snippet: str, for_query: str = "") -> None:
        self.results.append(SearchResult(title, url, snippet, for_query))

    def answer(self, query: str) -> list[SearchResult]:
        """The results added for `query`, or else those added for no query in particular."""
        tied = [r for r in self.results if r.for_query and r.for_query == query]
        return tied or [r for r in self.results if not r.for_query]


class FakeSearxng(_Server):
    def __init__(self, *, json_enabled: bool = True) -> None:
        super().__init__()
        self.json_enabled = json_enabled
        self.index = _Results()

    @property
    def queries(self) -> list[str]:
        return self.index.queries

    def add_result(self, title: str, url: str, snippet: str, for_query: str = "") -> None:
        self.index.add_result(title, url, snippet, for_query)

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/search", self._search)

    async def _search(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("format") != "json" or not self.json_enabled:
            return web.Response(status=403, text="403 Forbidden")
        query = request.query.get("q", "").strip()
        if not query:
            return web.Response(status=400, text="400 Bad Request")
        self.index.queries.append(query)
        results = [
            {"url": r.url, "title": r.title, "content": r.snippet, "engine": "fake", "score": 1.0}
            for r in self.index.answer(query)
        ]
        return web.json_response(
            {
                "query": query,
                "number_of_results": len(results),
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )


class FakeBrave(_Server):
    MAX_COUNT = 20
    MAX_QUERY_CHARS = 400
    MAX_QUERY_WORDS = 50

    def __init__(self, tokens: set[str], *, per_second: int = 50) -> None:
        super().__init__()
        self.tokens = tokens
        self.per_second = per_second
        self.index = _Results()
        self._window: list[float] = []

    @property
    def queries(self) -> list[str]:
        return self.index.queries

    def add_result(self, title: str, url: str, snippet: str, for_query: str = "") -> None:
        self.index.add_result(title, url, snippet, for_query)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/res/v1"

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/res/v1/web/search", self._search)

    def _error(self, status: int, code: str, detail: str) -> web.Response:
        return web.json_response(
            {
                "type": "ErrorResponse",
                "error": {"id": "fake", "status": status, "code": code, "detail": detail},
            },
            status=status,
        )

    async def _search(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("X-Subscription-Token", "")
        if token not in self.tokens:
            return self._error(
                422, "SUBSCRIPTION_TOKEN_INVALID", "The provided subscription token is invalid."
            )
        now = asyncio.get_running_loop().time()
        self._window = [t for t in self._window if now - t < 1.0]
        if len(self._window) >= self.per_second:
            response = self._error(429, "RATE_LIMITED", "Request rate limit exceeded for plan.")
            response.headers["X-RateLimit-Limit"] = f"{self.per_second}"
            response.headers["X-RateLimit-Remaining"] = "0"
            response.headers["X-RateLimit-Reset"] = "1"
            return response
        self._window.append(now)
        query = request.query.get("q", "")
        if not query.strip():
            return self._error(422, "VALIDATION", "q: field required")
        if len(query) > self.MAX_QUERY_CHARS or len(query.split()) > self.MAX_QUERY_WORDS:
            return self._error(422, "VALIDATION", "q: too long")
        count = request.query.get("count", "20")
        if not count.isdigit() or not 1 <= int(count) <= self.MAX_COUNT:
            return self._error(422, "VALIDATION", "count: must be between 1 and 20")
        self.index.queries.append(query)
        results = [
            {"type": "search_result", "title": r.title, "url": r.url, "description": r.snippet}
            for r in self.index.answer(query)[: int(count)]
        ]
        return web.json_response(
            {
                "type": "search",
                "query": {"original": query},
                "web": {"type": "search", "results": results},
            }
        )
