"""The web as skills see it, on loopback: pages to read, and search engines.

- `LocalPages`: an HTML article, a PDF, a plain text file, a redirect to a private address,
  a redirect chain, a huge body, a slow body, a page of a type that is not readable. Each
  request is recorded (so a test can prove a refused address was never contacted).
- `FakeSearxng`: SearXNG's `GET /search?q=…&format=json` (searx/webapp.py, webadapter.py,
  docs/dev/search_api.rst): 403 for a format not among the instance's `search.formats` (a
  default SearXNG has only `html`; a missing or unknown format is `html`); 400 with
  `{"error": …}` without a query or for a bad `pageno`, `safesearch` or `time_range`. With
  `limiter=True` (`server.limiter`), its bot detection (searx/limiter.py, botdetection/):
  429 "Too Many Requests" for a request whose Accept lacks text/html, without gzip/deflate in
  Accept-Encoding or without Accept-Language, from a bot's User-Agent, or past 4 API
  (non-html) requests an hour or 15 searches in 20 s.
- `FakeBrave`: Brave Search's `GET /res/v1/web/search` (api-dashboard.search.brave.com:
  web search reference, response headers; its error bodies as the API answers them): 422
  VALIDATION (`meta.errors`) without `X-Subscription-Token`, for an empty `q` or one over 400
  characters or 50 words, `count` outside 1..20, `offset` outside 0..9; 422
  SUBSCRIPTION_TOKEN_INVALID for an unknown token; 429 RATE_LIMITED past the plan's rate or
  its monthly quota (Brave documents 429 for both; the body as a real rate-limited answer
  reads: `detail` "Request rate limit exceeded for plan", meta plan, rate and quota limits and
  counts, org limits, component "rate_limiter"; the quota's detail text is ours, no real one
  is on record, its meta and headers say which limit it is: `X-RateLimit-Remaining` "…, 0").
  `X-RateLimit-Limit`/`-Policy`/`-Remaining`/`-Reset` (per second, per month) on each answer;
  only successful requests are counted.
Results point at pages registered with `add_result`; a result added `for_query` is the
engine's answer to that query alone (other queries get the results added without one).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
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


OUTPUT_FORMATS = ("html", "csv", "json", "rss")
# botdetection/http_user_agent.py: User-Agents of known bots (matched from the start).
BOT_AGENT = re.compile(
    r"(unknown|[Cc][Uu][Rr][Ll]|[wW]get|Scrapy|splash|JavaFX|FeedFetcher|python-requests"
    r"|Go-http-client|Java|Jakarta|okhttp|HttpClient|Jersey|Python|libwww-perl|Ruby"
    r"|SynHttpClient|UniversalFeedParser|Googlebot|GoogleImageProxy|bingbot|Baiduspider"
    r"|yacybot|YandexMobileBot|YandexBot|Yahoo! Slurp|MJ12bot|AhrefsBot|archive.org_bot"
    r"|msnbot|SeznamBot|linkdexbot|Netvibes|SMTBot|zgrab|James BOT|Sogou|Abonti|Pixray"
    r"|Spinn3r|SemrushBot|Exabot|ZmEu|BLEXBot|bitlybot|HeadlessChrome|.*PetalBot.*)"
)


class FakeSearxng(_Server):
    # botdetection/ip_limit.py: (window seconds, most requests) per client address.
    API_LIMIT = (3600.0, 4)  # format != html
    BURST_LIMIT = (20.0, 15)
    LONG_LIMIT = (600.0, 150)

    def __init__(self, *, json_enabled: bool = True, limiter: bool = False) -> None:
        super().__init__()
        self.json_enabled = json_enabled
        self.limiter = limiter
        self.index = _Results()
        self._windows: dict[str, list[float]] = {}

    @property
    def queries(self) -> list[str]:
        return self.index.queries

    def add_result(self, title: str, url: str, snippet: str, for_query: str = "") -> None:
        self.index.add_result(title, url, snippet, for_query)

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/search", self._search)

    def _over(self, name: str, limit: tuple[float, int]) -> bool:
        """Counts a request in a sliding window; True when it is one too many."""
        window, most = limit
        now = time.monotonic()
        hits = [t for t in self._windows.get(name, []) if now - t < window] + [now]
        self._windows[name] = hits
        return len(hits) > most

    def _bot(self, request: web.Request) -> bool:
        """limiter.filter_request on /search: the probe headers, then ip_limit."""
        headers = request.headers
        encodings = [e.strip() for e in headers.get("Accept-Encoding", "").split(",")]
        accepted = {m.split(";")[0].strip().lower() for m in headers.get("Accept", "").split(",")}
        if (
            BOT_AGENT.match(headers.get("User-Agent", "unknown"))
            # werkzeug's `'text/html' in request.accept_mimetypes`: wildcards match too
            or not accepted & {"text/html", "text/*", "*/*", "*"}
            or not ({"gzip", "deflate"} & set(encodings))
            or not headers.get("Accept-Language", "").strip()
        ):
            return True
        if request.query.get("format", "html") != "html" and self._over("api", self.API_LIMIT):
            return True
        return self._over("burst", self.BURST_LIMIT) or self._over("long", self.LONG_LIMIT)

    async def _search(self, request: web.Request) -> web.StreamResponse:
        if self.limiter and self._bot(request):
            return web.Response(status=429, text="Too Many Requests")
        output = request.query.get("format", "html")
        output = output if output in OUTPUT_FORMATS else "html"
        if output not in {"html", *(["json"] if self.json_enabled else [])}:
            return web.Response(status=403, text="403 Forbidden")
        query = request.query.get("q", "")
        refused = _searx_parameters(request.query) if query else "No query"
        if refused:
            if output == "html":  # the start page without a query, an error page otherwise
                return web.Response(
                    status=400 if query else 200, text=f"<p>{refused}</p>", content_type="text/html"
                )
            return web.json_response({"error": refused}, status=400)
        self.index.queries.append(query)
        found = self.index.answer(query)
        if output == "html":
            items = "".join(f'<article><a href="{r.url}">{r.title}</a></article>' for r in found)
            return web.Response(text=f"<html><body>{items}</body></html>", content_type="text/html")
        results = [
            {"url": r.url, "title": r.title, "content": r.snippet, "engine": "fake", "score": 1.0}
            for r in found
        ]
        return web.json_response(
            {
                "query": query,
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )


def _searx_parameters(form: Any) -> str:
    """webadapter.get_search_query_from_webapp: SearxParameterException's message, or ''."""

    def invalid(name: str, value: object) -> str:
        return f"Invalid value {value} for parameter {name}"

    pageno = form.get("pageno", "1")
    if not pageno.isdigit() or int(pageno) < 1:
        return invalid("pageno", pageno) if pageno else "Empty pageno parameter"
    safesearch = form.get("safesearch")
    if safesearch is not None and (not safesearch.isdigit() or int(safesearch) > 2):
        return invalid("safesearch", safesearch) if safesearch else "Empty safesearch parameter"
    time_range = form.get("time_range")
    if time_range not in (None, "", "None", "day", "week", "month", "year"):
        return invalid("time_range", time_range)
    return ""


class FakeBrave(_Server):
    MAX_COUNT = 20
    MAX_OFFSET = 9
    MAX_QUERY_CHARS = 400
    MAX_QUERY_WORDS = 50
    MONTH = 2_592_000  # the monthly window, in seconds, as X-RateLimit-Policy gives it

    def __init__(
        self, tokens: set[str], *, per_second: int = 50, per_month: int = 20_000_000
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.per_second = per_second
        self.per_month = per_month
        self.billed = 0  # successful requests: the only ones counted and billed
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

    def _error(self, status: int, code: str, detail: str, meta: dict[str, Any]) -> web.Response:
        return web.json_response(
            {
                "type": "ErrorResponse",
                "error": {
                    "id": str(uuid.uuid4()),
                    "status": status,
                    "code": code,
                    "detail": detail,
                    "meta": meta,
                },
                "time": int(time.time()),
            },
            status=status,
        )

    def _rate_headers(self) -> dict[str, str]:
        """The documented response headers: each a per-second and a per-month value."""
        second = max(0, self.per_second - len(self._window))
        month = max(0, self.per_month - self.billed)
        return {
            "X-RateLimit-Limit": f"{self.per_second}, {self.per_month}",
            "X-RateLimit-Policy": f"{self.per_second};w=1, {self.per_month};w={self.MONTH}",
            "X-RateLimit-Remaining": f"{second}, {month}",
            "X-RateLimit-Reset": f"1, {self.MONTH}",
        }

    async def _search(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("X-Subscription-Token")
        errors = _brave_parameters(request.query, self)
        if token is None:
            errors.insert(0, _field_error("missing", "header", "x-subscription-token", None))
        if errors:
            return self._error(
                422, "VALIDATION", "Unable to validate request parameter(s)", {"errors": errors}
            )
        if token not in self.tokens:
            return self._error(
                422,
                "SUBSCRIPTION_TOKEN_INVALID",
                "The provided subscription token is invalid.",
                {"component": "authentication"},
            )
        now = asyncio.get_running_loop().time()
        self._window = [t for t in self._window if now - t < 1.0]
        over_quota = self.billed >= self.per_month
        if over_quota or len(self._window) >= self.per_second:
            response = self._error(
                429,
                "RATE_LIMITED",
                "Request quota exceeded for plan"
                if over_quota
                else "Request rate limit exceeded for plan",
                {
                    "plan": "Fake",
                    "rate_limit": self.per_second,
                    "rate_current": len(self._window),
                    "quota_limit": self.per_month,
                    "quota_current": self.billed,
                    "org_rate_limit": None,  # a key of no organisation's shared limit
                    "org_rate_current": 0,
                    "component": "rate_limiter",
                },
            )
            response.headers.update(self._rate_headers())
            return response
        self._window.append(now)
        self.billed += 1
        query = request.query["q"]
        count = int(request.query.get("count", str(self.MAX_COUNT)))
        self.index.queries.append(query)
        results = [
            {"type": "search_result", "title": r.title, "url": r.url, "description": r.snippet}
            for r in self.index.answer(query)[:count]
        ]
        return web.json_response(
            {
                "type": "search",
                "query": {"original": query},
                "web": {"type": "search", "results": results},
            },
            headers=self._rate_headers(),
        )


def _field_error(kind: str, where: str, name: str, value: object, msg: str = "") -> dict[str, Any]:
    """One of a 422 VALIDATION's `meta.errors`, as Brave's API lists them."""
    return {
        "type": kind,
        "loc": [where, name],
        "msg": msg or "Field required",
        "input": value,
    }


def _brave_parameters(query: Any, brave: FakeBrave) -> list[dict[str, Any]]:
    """What Brave's web search reference allows: `q` not empty, at most 400 characters and 50
    words; `count` 1..20; `offset` 0..9."""
    errors: list[dict[str, Any]] = []
    q = query.get("q")
    if q is None:
        errors.append(_field_error("missing", "query", "q", None))
    elif not q.strip():
        errors.append(_field_error("value_error", "query", "q", q, "Query can not be empty"))
    elif len(q) > brave.MAX_QUERY_CHARS or len(q.split()) > brave.MAX_QUERY_WORDS:
        msg = "Maximum of 400 characters and 50 words in the query"
        errors.append(_field_error("value_error", "query", "q", q, msg))
    for name, low, high in (("count", 1, brave.MAX_COUNT), ("offset", 0, brave.MAX_OFFSET)):
        raw = query.get(name)
        if raw is None:
            continue
        if not raw.lstrip("-").isdigit():
            msg = "Input should be a valid integer, unable to parse string as an integer"
            errors.append(_field_error("int_parsing", "query", name, raw, msg))
        elif int(raw) < low:
            msg = f"Input should be greater than or equal to {low}"
            errors.append(_field_error("greater_than_equal", "query", name, raw, msg))
        elif int(raw) > high:
            msg = f"Input should be less than or equal to {high}"
            errors.append(_field_error("less_than_equal", "query", name, raw, msg))
    return errors
