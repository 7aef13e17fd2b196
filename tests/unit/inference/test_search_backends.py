"""web_research's search backends against the fake engines over HTTP, as strict as the real
ones: Brave's 50-word limit and its 422s that are not about the key, SearXNG's limiter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from tzurot.inference.skills.base import SkillContext, SkillError
from tzurot.inference.skills.search import BraveSearch, SearxngSearch
from tzurot.testing.fake_web import FakeBrave, FakeSearxng

BRAVE_KEY = "BSAfakeBraveKey123"


async def wallet(name: str) -> SecretStr | None:
    return SecretStr(BRAVE_KEY) if name == "brave" else None


CTX = SkillContext(user_id="u-1", personality_id="p-1", wallet_key=wallet)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def test_a_query_of_many_short_words_is_searched_within_braves_limit(
    http: httpx.AsyncClient,
) -> None:
    query = " ".join(f"w{n}" for n in range(60))  # 239 characters, 60 words
    async with FakeBrave({BRAVE_KEY}) as brave:
        brave.add_result("Found", "http://example.test/found", "A hit.")
        hits = await BraveSearch(http, brave.base_url).search(query, 3, CTX)
    assert [h.url for h in hits] == ["http://example.test/found"]
    assert brave.queries == [" ".join(f"w{n}" for n in range(50))]


async def test_a_query_brave_refuses_is_not_blamed_on_the_key(http: httpx.AsyncClient) -> None:
    async with FakeBrave({BRAVE_KEY}) as brave:
        with pytest.raises(SkillError) as refused:
            await BraveSearch(http, brave.base_url).search("", 3, CTX)
    assert str(refused.value) == "Brave Search refused the query (VALIDATION)"
    assert "wallet" not in str(refused.value)


async def test_a_wrong_brave_key_is_still_the_key(http: httpx.AsyncClient) -> None:
    async with FakeBrave({"BSAanother"}) as brave:
        with pytest.raises(SkillError) as refused:
            await BraveSearch(http, brave.base_url).search("moon", 3, CTX)
    assert "refused the key (HTTP 422)" in str(refused.value)


async def test_braves_monthly_quota_is_told_apart_from_its_rate(
    http: httpx.AsyncClient,
) -> None:
    async with FakeBrave({BRAVE_KEY}, per_second=1, per_month=2) as brave:
        search = BraveSearch(http, brave.base_url).search
        await search("moon", 3, CTX)
        with pytest.raises(SkillError) as too_fast:
            await search("moon", 3, CTX)
        await asyncio.sleep(1.05)  # the per-second window passes
        await search("moon", 3, CTX)
        await asyncio.sleep(1.05)
        with pytest.raises(SkillError) as used_up:
            await search("moon", 3, CTX)
    assert str(too_fast.value) == "Brave Search is rate limiting this key; try again in a second"
    assert str(used_up.value) == (
        "Brave Search's monthly quota for this key is used up; it renews in 30 days"
    )


async def test_searxngs_limiter_is_named_as_the_operator_setting_it_is(
    http: httpx.AsyncClient,
) -> None:
    """SearXNG's limiter answers an API client 429 whatever it waits (it checks for a
    browser's headers, then allows 4 API requests an hour): not a "try again later"."""
    async with FakeSearxng(limiter=True) as searx:
        with pytest.raises(SkillError) as refused:
            await SearxngSearch(http, searx.base_url).search("moon", 3, CTX)
    assert "server.limiter" in str(refused.value)
    assert "try again" not in str(refused.value)


async def test_an_error_code_that_is_no_identifier_is_not_quoted() -> None:
    """Only an identifier of Brave's `error.code` is quoted (to the model, in the step's
    summary): a proxy's body can echo the key it was sent."""

    def answer(request: httpx.Request) -> httpx.Response:
        echoed = f"bad token {request.headers['x-subscription-token']}"
        return httpx.Response(422, json={"error": {"code": echoed, "status": 422}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(SkillError) as refused:
            await BraveSearch(client, "http://brave.test/res/v1").search("moon", 3, CTX)
    assert BRAVE_KEY not in str(refused.value)
    assert str(refused.value) == (
        "Brave Search refused the key (HTTP 422); update it with /wallet set brave"
    )
