"""The fake ElevenLabs holds each account to its plan's requests in flight (help.elevenlabs.io
article 19571824571921: Free 2, Starter 3, Creator 5, Pro 10, Scale 15, Business 15): one more
text-to-speech request is refused 429 `too_many_concurrent_requests`, in the shape of its other
refusals, until one finishes; `system_busy_next` injects its 429 `system_busy`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest

from tzurot.testing.fake_elevenlabs import FakeElevenLabs
from tzurot.testing.fake_elevenlabs_rules import PLAN_CONCURRENCY

SARAH = "EXAVITQu4vr4xnSDxMaL"


@pytest.fixture
async def fake() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(valid_keys=()) as eleven:
        eleven.latency = 0.4  # each request stays in flight that long
        yield eleven


async def speak(http: httpx.AsyncClient, key: str) -> httpx.Response:
    return await http.post(
        f"/v1/text-to-speech/{SARAH}/stream",
        headers={"xi-api-key": key},
        json={"text": "hello there", "model_id": "eleven_multilingual_v2"},
    )


async def test_the_plans_limits_are_the_documented_ones() -> None:
    assert PLAN_CONCURRENCY == {
        "free": 2,
        "starter": 3,
        "creator": 5,
        "pro": 10,
        "scale": 15,
        "business": 15,
        "paid": 3,
    }


@pytest.mark.parametrize(("plan", "limit"), [("free", 2), ("starter", 3), ("creator", 5)])
async def test_one_request_more_than_the_plan_allows_is_refused(
    fake: FakeElevenLabs, plan: str, limit: int
) -> None:
    fake.add_key("sk_key", plan=plan)
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        answers = await asyncio.gather(*(speak(http, "sk_key") for _ in range(limit + 1)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * limit + [429]
        (refused,) = [a for a in answers if a.status_code == 429]
        detail = refused.json()["detail"]
        assert detail["code"] == detail["status"] == "too_many_concurrent_requests"
        assert f"allows {limit} concurrent requests" in detail["message"]
        assert detail["request_id"]
        assert fake.peak_in_flight == limit
        # Once they finished, the account speaks again.
        assert (await speak(http, "sk_key")).status_code == 200
    assert fake.in_flight == {next(iter(fake.in_flight)): 0}


async def test_each_account_has_its_own_limit(fake: FakeElevenLabs) -> None:
    fake.add_key("sk_one", plan="free")
    fake.add_key("sk_two", plan="free")
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        answers = await asyncio.gather(
            *(speak(http, key) for key in ("sk_one", "sk_one", "sk_two", "sk_two"))
        )
    assert [a.status_code for a in answers] == [200] * 4


async def test_a_refused_key_is_refused_for_the_key_first(fake: FakeElevenLabs) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        refused = await speak(http, "sk_unknown")
    assert refused.status_code == 401
    assert fake.in_flight == {}


async def test_system_busy_is_injected_for_the_next_requests(fake: FakeElevenLabs) -> None:
    fake.add_key("sk_key")
    fake.latency = 0.0
    fake.system_busy_next(2)
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        answers = [await speak(http, "sk_key") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    detail = answers[0].json()["detail"]
    assert detail["code"] == detail["status"] == "system_busy"
    assert fake.characters_used == len("hello there")  # only the one spoken is billed
