"""The fake search engines refuse what theirs refuse, with their status codes and bodies:
SearXNG (searx/webapp.py, webadapter.py, limiter.py and botdetection/, docs/dev/search_api.rst)
and Brave Search's web search API (its API reference and response-headers pages; the error
bodies as the API answers them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import pytest

from tzurot.testing.fake_web import FakeBrave, FakeSearxng

TOKEN = "BSAgood"
BROWSER = {  # what a browser sends, which SearXNG's bot detection lets through
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
    "Accept-Encoding": "gzip, deflate",
    "Accept-Language": "en-US,en;q=0.5",
}


@pytest.fixture
async def searx() -> AsyncIterator[FakeSearxng]:
    async with FakeSearxng() as fake:
        yield fake


async def searx_get(
    searx: FakeSearxng,
    params: dict[str, str] | None = None,
    *,
    headers: dict[str, str] | None = None,
    **more: str,
) -> httpx.Response:
    params = {**(params or {}), **more}
    async with httpx.AsyncClient() as client:
        return await client.get(f"{searx.base_url}/search", params=params, headers=headers)


async def test_searxng_without_a_known_format_answers_html(searx: FakeSearxng) -> None:
    for params in ({"q": "x"}, {"q": "x", "format": "yaml"}):
        response = await searx_get(searx, params)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "No query"),
        ({"q": ""}, "No query"),
        ({"q": "x", "safesearch": "3"}, "Invalid value 3 for parameter safesearch"),
        ({"q": "x", "safesearch": "strict"}, "Invalid value strict for parameter safesearch"),
        ({"q": "x", "pageno": "0"}, "Invalid value 0 for parameter pageno"),
        ({"q": "x", "time_range": "decade"}, "Invalid value decade for parameter time_range"),
    ],
)
async def test_searxng_refuses_bad_parameters_with_a_json_error(
    searx: FakeSearxng, params: dict[str, str], error: str
) -> None:
    response = await searx_get(searx, {"format": "json", **params})
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert searx.queries == []


async def test_searxng_json_has_the_current_keys(searx: FakeSearxng) -> None:
    searx.add_result("A", "http://example.test/a", "An a.")
    body = (await searx_get(searx, q="a", format="json", safesearch="1", time_range="week")).json()
    assert set(body) == {
        "query",
        "results",
        "answers",
        "corrections",
        "infoboxes",
        "suggestions",
        "unresponsive_engines",
    }  # `number_of_results` was dropped (searxng #6130)


@pytest.mark.parametrize(
    "headers",
    [
        {"Accept": "application/json"},  # no text/html
        {"Accept-Language": ""},
        {"Accept-Encoding": "br"},
        {"User-Agent": "python-requests/2.32"},
    ],
    ids=["accept", "accept-language", "accept-encoding", "user-agent"],
)
async def test_searxngs_limiter_refuses_what_does_not_look_like_a_browser(
    headers: dict[str, str],
) -> None:
    async with FakeSearxng(limiter=True) as searx:
        refused = await searx_get(searx, headers={**BROWSER, **headers}, q="x", format="json")
        assert (refused.status_code, refused.text) == (429, "Too Many Requests")
        assert (await searx_get(searx, headers=BROWSER, q="x", format="json")).status_code == 200
        anything = {**BROWSER, "Accept": "*/*"}  # a wildcard includes text/html
        assert (await searx_get(searx, headers=anything, q="x", format="json")).status_code == 200


async def test_searxngs_limiter_allows_four_api_requests_an_hour() -> None:
    async with FakeSearxng(limiter=True) as searx:
        statuses = [
            (await searx_get(searx, headers=BROWSER, q="x", format="json")).status_code
            for _ in range(5)
        ]
        assert statuses == [200, 200, 200, 200, 429]
        assert (await searx_get(searx, headers=BROWSER, q="x")).status_code == 200  # html: not API


@pytest.fixture
async def brave() -> AsyncIterator[FakeBrave]:
    async with FakeBrave({TOKEN}, per_second=2, per_month=2000) as fake:
        yield fake


async def brave_get(brave: FakeBrave, token: str | None = TOKEN, **params: Any) -> httpx.Response:
    headers = {"X-Subscription-Token": token} if token is not None else {}
    async with httpx.AsyncClient() as client:
        return await client.get(f"{brave.base_url}/web/search", params=params, headers=headers)


async def test_brave_without_a_token_is_a_validation_error(brave: FakeBrave) -> None:
    response = await brave_get(brave, None, q="x")
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "ErrorResponse"
    assert (body["error"]["code"], body["error"]["detail"]) == (
        "VALIDATION",
        "Unable to validate request parameter(s)",
    )
    (error,) = body["error"]["meta"]["errors"]
    assert (error["loc"], error["type"], error["msg"]) == (
        ["header", "x-subscription-token"],
        "missing",
        "Field required",
    )


async def test_brave_an_unknown_token_is_refused_by_authentication(brave: FakeBrave) -> None:
    response = await brave_get(brave, "BSAwrong", q="x")
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["meta"]) == (
        "SUBSCRIPTION_TOKEN_INVALID",
        {"component": "authentication"},
    )
    assert isinstance(response.json()["time"], int)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": " "}, "q"),
        ({"q": "x" * 401}, "q"),
        ({"q": "w " * 51}, "q"),
        ({"q": "x", "count": 0}, "count"),
        ({"q": "x", "count": 21}, "count"),
        ({"q": "x", "count": "ten"}, "count"),
        ({"q": "x", "offset": 10}, "offset"),
        ({"q": "x", "offset": -1}, "offset"),
    ],
)
async def test_brave_validates_q_count_and_offset(
    brave: FakeBrave, params: dict[str, Any], field: str
) -> None:
    response = await brave_get(brave, **params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION"
    assert [e["loc"] for e in error["meta"]["errors"]] == [["query", field]]
    assert brave.queries == []


async def test_brave_rate_headers_count_only_successful_requests(brave: FakeBrave) -> None:
    await brave_get(brave, q="x", count=50)  # refused: not counted
    first = await brave_get(brave, q="x", offset=9)
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "2, 2000"
    assert first.headers["X-RateLimit-Policy"] == "2;w=1, 2000;w=2592000"
    assert first.headers["X-RateLimit-Remaining"] == "1, 1999"
    assert (await brave_get(brave, q="x")).status_code == 200
    limited = await brave_get(brave, q="x")
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert (error["code"], error["detail"]) == (
        "RATE_LIMITED",
        "Request rate limit exceeded for plan",
    )
    assert (error["meta"]["component"], error["meta"]["rate_limit"]) == ("rate_limiter", 2)
    # The meta's fields as a real rate-limited answer has them (a Free plan's, 2026).
    assert set(error["meta"]) == {
        "plan",
        "rate_limit",
        "rate_current",
        "quota_limit",
        "quota_current",
        "org_rate_limit",
        "org_rate_current",
        "component",
    }
    assert limited.headers["X-RateLimit-Remaining"] == "0, 1998"


async def test_brave_refuses_past_the_monthly_quota() -> None:
    async with FakeBrave({TOKEN}, per_second=50, per_month=2) as brave:
        assert [(await brave_get(brave, q="x")).status_code for _ in range(2)] == [200, 200]
        refused = await brave_get(brave, q="x")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["code"], error["meta"]["quota_limit"], error["meta"]["quota_current"]) == (
        "RATE_LIMITED",
        2,
        2,
    )
    assert refused.headers["X-RateLimit-Remaining"].endswith(", 0")
    assert brave.billed == len(brave.queries) == 2
