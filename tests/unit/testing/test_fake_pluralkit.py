"""The fake PluralKit refuses what PluralKit refuses (docs/content/api/reference.md, errors.md,
endpoints.md, and its API code: crates/api/src/middleware/ratelimit.rs and ratelimit.lua), and
records a proxied message only after posting its repost (PluralKit.Bot/Proxy/ProxyService.cs)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest

from tzurot.testing.fake_discord import FakeDiscord, FakePluralKit

AGENT = {"User-Agent": "Tzurot tests"}
SENDER = {"id": "42", "username": "alice"}


class Clock:
    """Time that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def pk() -> AsyncIterator[FakePluralKit]:
    async with FakePluralKit() as fake:
        fake.clock = Clock()
        yield fake


async def get(pk: FakePluralKit, message_id: object, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"{pk.base_url}/messages/{message_id}", headers=headers)


async def test_a_request_without_a_user_agent_is_a_400_and_not_counted(pk: FakePluralKit) -> None:
    refused = await get(pk, 1, **{"User-Agent": ""})
    assert refused.status_code == 400
    assert "X-RateLimit-Remaining" not in refused.headers  # refused before the rate limiter
    assert refused.json()["code"] == 0
    assert (await get(pk, 1, **AGENT)).headers["X-RateLimit-Remaining"] == "9"


async def test_an_unknown_message_is_a_404_with_code_20006(pk: FakePluralKit) -> None:
    response = await get(pk, 123456789, **AGENT)
    assert response.status_code == 404
    assert response.json() == {"message": "Message not found.", "code": 20006}
    assert response.headers["X-RateLimit-Scope"] == "message"  # rate headers on every answer


@pytest.mark.parametrize("message_id", ["abc", "-1", str(2**64)])
async def test_an_id_that_is_not_a_snowflake_is_a_400(pk: FakePluralKit, message_id: str) -> None:
    response = await get(pk, message_id, **AGENT)
    assert response.status_code == 400
    assert response.json() == {"message": "400: Bad Request", "code": 0}


async def test_ten_a_second_is_a_burst_of_nine_then_one_every_100_ms(pk: FakePluralKit) -> None:
    """PluralKit's GCRA runs a request only while something remains after it: of ten sent at
    once, the tenth is refused (and still counted, retry_after 0), the eleventh waits 100 ms."""
    statuses = [(await get(pk, 1, **AGENT)).status_code for _ in range(9)]
    assert statuses == [404] * 9
    tenth = await get(pk, 1, **AGENT)
    assert tenth.status_code == 429
    body = tenth.json()
    assert body == {
        "message": "429: too many requests",
        "retry_after": 0,
        "scope": "message",
        "code": 0,
    }
    eleventh = await get(pk, 1, **AGENT)
    assert (eleventh.status_code, eleventh.json()["retry_after"]) == (429, 100)  # milliseconds
    headers = eleventh.headers
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("10", "0")
    assert headers["X-RateLimit-Scope"] == "message"
    assert int(headers["X-RateLimit-Reset"]) > 0
    assert isinstance(pk.clock, Clock)
    pk.clock.now += 0.1 + 0.1  # retry_after, and one interval more: something remains
    assert (await get(pk, 1, **AGENT)).status_code == 404


async def test_waiting_exactly_retry_after_lands_on_the_edge_again() -> None:
    """At the edge (remaining 0) the script moves the arrival time, yet the API answers 429
    with retry_after 0; a client that waits only what retry_after says meets that edge again.
    Waiting one interval (1/limit s) more is answered."""
    async with FakePluralKit(rate=(4, 1.0)) as pk:  # 250 ms apart
        pk.clock = clock = Clock()
        assert [(await get(pk, 1, **AGENT)).status_code for _ in range(3)] == [404] * 3
        edge = await get(pk, 1, **AGENT)
        assert (edge.status_code, edge.json()["retry_after"]) == (429, 0)
        after = await get(pk, 1, **AGENT)
        assert (after.status_code, after.json()["retry_after"]) == (429, 250)
        clock.now += 0.25
        again = await get(pk, 1, **AGENT)  # waited as told: the edge again, counted
        assert (again.status_code, again.json()["retry_after"]) == (429, 0)
        then = await get(pk, 1, **AGENT)
        assert (then.status_code, then.json()["retry_after"]) == (429, 250)
        clock.now += 0.25 + 0.25
        assert (await get(pk, 1, **AGENT)).status_code == 404
        assert pk.refused == [429] * 4


async def test_an_original_id_answers_only_for_30_minutes(pk: FakePluralKit) -> None:
    pk.register(2000, SENDER, "Fox", original=1999)
    assert (await get(pk, 1999, **AGENT)).json()["id"] == "2000"
    assert isinstance(pk.clock, Clock)
    pk.clock.now += 30 * 60  # RedisService.SetOriginalMid: expiry 30 minutes
    assert (await get(pk, 1999, **AGENT)).status_code == 404
    assert (await get(pk, 2000, **AGENT)).status_code == 200  # the repost's id: still known


async def test_the_message_object_has_every_documented_key(pk: FakePluralKit) -> None:
    message_id = 175928847299117063  # Discord's documented example snowflake: 2016-04-30
    pk.register(message_id, SENDER, "Fox", original=message_id - 5)
    found = (await get(pk, message_id, **AGENT)).json()
    assert set(found) == {
        "timestamp",
        "id",
        "original",
        "sender",
        "channel",
        "guild",
        "system",
        "member",
    }
    assert found["timestamp"] == "2016-04-30T11:18:25Z"  # from the id, as NodaTime prints it
    assert {"uuid", "tag", "pronouns", "created", "privacy"} <= set(found["system"])
    assert {"uuid", "proxy_tags", "keep_proxy", "privacy"} <= set(found["member"])


async def test_a_repost_is_recorded_after_it_is_posted_and_the_original_deleted_after_that() -> (
    None
):
    # Delays a loaded machine cannot overrun between the repost and the first read (0.2 s
    # could, once).
    async with FakeDiscord() as discord, FakePluralKit(record_delay=1.5) as pk:
        pk.delete_delay = 0.75  # shorter than the save: the deletion waits for it
        guild = discord.add_guild()
        channel = discord.add_channel(guild, "general")
        alice = discord.make_user("alice")
        original, repost = await pk.proxy(discord, channel, alice, "hi", "Fox")
        assert (await get(pk, repost.id, **AGENT)).status_code == 404  # not saved yet
        assert not original.deleted
        await discord.wait_until(lambda: original.deleted)
        found = (await get(pk, repost.id, **AGENT)).json()
        assert (found["original"], found["channel"], found["guild"]) == (
            str(original.id),
            channel["id"],
            guild["id"],
        )
