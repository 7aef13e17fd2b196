"""Pluggable web search backends for web_research.

- SearXNG's JSON API (`GET {base}/search?q=…&format=json`), which operators can self-host;
  the instance must have `json` among its `search.formats` (else it answers 403) and its
  limiter off or this service's address passed (the limiter answers API clients 429).
- Brave Search's API (`GET {base}/web/search?q=…&count=…` with `X-Subscription-Token`), a
  paid backend: the key is the user's, from the wallet (`/wallet set brave`). A query is at
  most 400 characters and 50 words; a 422 is a refused key only with SUBSCRIPTION_TOKEN_INVALID
  (Brave answers every other refusal, VALIDATION, with 422 too). Brave has no free call that
  proves a key (every request is a billed search): `check_key`, the wallet's test of a stored
  key, is one search with count=1. Every search Brave answered (HTTP 200) is billed, and noted
  as such (`SkillContext.spending`: a usage row of request_type "web_search", provider
  "brave", no model or tokens; /usage counts them as requests).

Backends are operator configuration (trusted addresses), so they are called directly, not
through the SSRF-safe fetcher that reads the results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2 as httpx
from pydantic import SecretStr

from tzurot.inference.domain import WEB_SEARCH, PaidCall, TokenUsage
from tzurot.inference.skills.base import SkillContext, SkillError
from tzurot.runtime.errors import FailedPrecondition, ResourceExhausted, TzurotError, Unavailable

_BRAVE_CODE = re.compile(r"[A-Z_]{1,48}")
"""A Brave error's `code` as we may quote it (theirs are upper snake case)."""

MAX_QUERY_CHARS = 400
BRAVE_MAX_WORDS = 50
BRAVE = "brave"
BRAVE_CHECK_QUERY = "brave search"
"""The search a key check spends (count=1): any query proves the key; its results are unread."""
BRAVE_CHECK_TIMEOUT_SECONDS = 15.0
"""A key check's bound, as an LLM provider's (sdk_clients.py `quick`): on a dead network the user
hears so soon."""


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str


class SearchBackend(Protocol):
    name: str

    async def search(self, query: str, count: int, ctx: SkillContext) -> list[SearchHit]: ...


def _hits(items: Any, snippet_key: str, count: int) -> list[SearchHit]:
    hits: list[SearchHit] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        url = item.get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            hits.append(
                SearchHit(
                    title=str(item.get("title") or url),
                    url=url,
                    snippet=str(item.get(snippet_key) or ""),
                )
            )
        if len(hits) >= count:
            break
    return hits


class SearxngSearch:
    name = "searxng"

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base = base_url.rstrip("/")

    async def search(self, query: str, count: int, ctx: SkillContext) -> list[SearchHit]:
        try:
            response = await self._client.get(
                f"{self._base}/search",
                params={"q": query[:MAX_QUERY_CHARS], "format": "json", "safesearch": "1"},
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError:
            raise SkillError("the search engine could not be reached") from None
        if response.status_code == 403:  # SearXNG: json format not enabled
            raise SkillError("the search engine does not allow JSON searches (operator setting)")
        if response.status_code == 429:  # only SearXNG's limiter answers 429, to API clients
            raise SkillError(
                "the search engine's limiter refused the search (operator setting: SearXNG's "
                "server.limiter must be off or let this service through)"
            )
        if response.status_code != 200:
            raise SkillError(f"the search engine answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise SkillError("the search engine answered something that is not JSON") from None
        return _hits(body.get("results") if isinstance(body, dict) else None, "content", count)


class BraveSearch:
    name = "brave"
    DEFAULT_URL = "https://api.search.brave.com/res/v1"
    MAX_COUNT = 20

    def __init__(self, client: httpx.AsyncClient, base_url: str = DEFAULT_URL) -> None:
        self._client = client
        self._base = base_url.rstrip("/")

    async def _get(
        self, key: SecretStr, query: str, count: int, *, quick: bool = False
    ) -> httpx.Response | None:
        """One search's answer; None when Brave Search could not be reached. `quick`: within
        BRAVE_CHECK_TIMEOUT_SECONDS (a key check), else the client's own timeout."""
        extra: dict[str, Any] = {"timeout": BRAVE_CHECK_TIMEOUT_SECONDS} if quick else {}
        try:
            return await self._client.get(
                f"{self._base}/web/search",
                params={"q": _brave_query(query), "count": min(count, self.MAX_COUNT)},
                headers={
                    "Accept": "application/json",
                    "X-Subscription-Token": key.get_secret_value(),
                },
                **extra,
            )
        except httpx.HTTPError:
            return None

    async def check_key(self, key: SecretStr) -> None:
        """Proves `key` with one search (count=1), billed to it: Brave has no free call.

        A refused key (401, 403, 422 SUBSCRIPTION_TOKEN_INVALID) is FailedPrecondition
        INVALID_API_KEY, as an LLM provider's; a 429 is RESOURCE_EXHAUSTED, the monthly quota
        PROVIDER_QUOTA_EXCEEDED, the rate PROVIDER_RATE_LIMITED (the key works); unreachable or
        any other answer UNAVAILABLE. Brave's error text is never quoted (it can echo the key),
        only its code when it is a plain identifier.
        """
        response = await self._get(key, BRAVE_CHECK_QUERY, 1, quick=True)
        if response is None:
            raise Unavailable("Brave Search could not be reached", metadata={"provider": BRAVE})
        status = response.status_code
        if status == 200:
            return
        code = _brave_error_code(response) if status == 422 else ""
        if status in (401, 403) or code == "SUBSCRIPTION_TOKEN_INVALID":
            raise _refused_key(status)
        if status == 429:
            raise _brave_limited(response)
        said = f" {code}" if code else ""
        raise Unavailable(
            f"Brave Search could not check the key (HTTP {status}{said})",
            metadata={"provider": BRAVE},
        )

    async def search(self, query: str, count: int, ctx: SkillContext) -> list[SearchHit]:
        key = await ctx.wallet_key("brave") if ctx.wallet_key is not None else None
        if key is None or not key.get_secret_value():
            raise SkillError("no Brave Search key: the user can add one with /wallet set brave")
        response = await self._get(key, query, count)
        if response is None:
            raise SkillError("Brave Search could not be reached")
        status = response.status_code
        if status == 200:  # billed to the user's key, whatever its body holds
            ctx.spending.paid(PaidCall(WEB_SEARCH, BRAVE, "", TokenUsage(0, 0)))
        code = _brave_error_code(response) if status == 422 else ""
        if code and code != "SUBSCRIPTION_TOKEN_INVALID":
            raise SkillError(f"Brave Search refused the query ({code})")
        if status in (401, 403, 422):
            # S608: "update … set" reads as SQL to the linter; this is a message for the user.
            raise SkillError(
                f"Brave Search refused the key (HTTP {status}); update it with /wallet set brave",  # noqa: S608
                refused_key=BRAVE,
            )
        if status == 429:
            raise SkillError(_brave_limit_message(response))
        if status != 200:
            raise SkillError(f"Brave Search answered HTTP {status}")
        try:
            body = response.json()
        except ValueError:
            raise SkillError("Brave Search answered something that is not JSON") from None
        web = body.get("web") if isinstance(body, dict) else None
        return _hits(web.get("results") if isinstance(web, dict) else None, "description", count)


def _brave_query(query: str) -> str:
    """The query within Brave's limits: 50 words, 400 characters."""
    return " ".join(query.split()[:BRAVE_MAX_WORDS])[:MAX_QUERY_CHARS]


def _brave_limit_message(response: httpx.Response) -> str:
    """What a 429 means: Brave's headers give each limit as "<per second>, <per month>"; a
    month's remaining 0 is the monthly quota, which no retry soon will help."""
    if _monthly_quota_spent(response):
        reset = response.headers.get("X-RateLimit-Reset", "").split(",")
        days = _whole_days(reset[1]) if len(reset) == 2 else None
        when = f"; it renews in {days} day{'s' * (days != 1)}" if days is not None else ""
        return f"Brave Search's monthly quota for this key is used up{when}"
    return "Brave Search is rate limiting this key; try again in a second"


def _monthly_quota_spent(response: httpx.Response) -> bool:
    remaining = response.headers.get("X-RateLimit-Remaining", "").split(",")
    return len(remaining) == 2 and remaining[1].strip() == "0"


def _brave_limited(response: httpx.Response) -> TzurotError:
    """A key check's 429: the key works, its quota or rate is spent."""
    quota = _monthly_quota_spent(response)
    return ResourceExhausted(
        _brave_limit_message(response),
        reason="PROVIDER_QUOTA_EXCEEDED" if quota else "PROVIDER_RATE_LIMITED",
        metadata={"provider": BRAVE},
    )


def _refused_key(status: int) -> FailedPrecondition:
    # S608: "update … set" reads as SQL to the linter; this is a message for the user.
    return FailedPrecondition(
        f"brave rejected the API key (HTTP {status}); update it with /wallet set brave",  # noqa: S608
        reason="INVALID_API_KEY",
        metadata={"provider": BRAVE},
    )


def _whole_days(seconds: str) -> int | None:
    try:
        return max(1, -(-int(seconds.strip()) // 86_400))
    except ValueError:
        return None


def _brave_error_code(response: httpx.Response) -> str:
    """The `error.code` of Brave's ErrorResponse body, or ''."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    # Only a plain identifier is quoted (to the model and in the step's summary): an error
    # body's text can echo the key.
    return code if isinstance(code, str) and _BRAVE_CODE.fullmatch(code) else ""
