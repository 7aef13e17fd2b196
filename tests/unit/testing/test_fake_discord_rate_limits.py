"""The fake Discord's rate limits, as rate-limits.mdx describes them: the global limit (50 a
second per bot token, per IP address without one, interaction endpoints exempt) and Create
Message's bucket per channel, with Discord's headers and 429 bodies."""

from __future__ import annotations

import asyncio
import time

import discord

from tests.unit.bot.test_unfinished_on_discord import connected
from tests.unit.testing.test_fake_discord_rules import discord_http, hook_of, hook_path, interaction
from tzurot.testing.fake_discord import FakeDiscord


async def test_the_51st_request_in_a_second_is_refused_with_the_global_429() -> None:
    async with discord_http() as (http, _, _):
        answers = await asyncio.gather(*(http.call("GET", "/users/@me") for _ in range(51)))
        statuses = sorted(a[0] for a in answers)
        assert statuses == [200] * 50 + [429]
        (_, body, headers) = next(a for a in answers if a[0] == 429)
        assert body["message"] == "You are being rate limited."
        assert body["global"] is True
        assert 0 < body["retry_after"] <= 1.0
        assert headers["X-RateLimit-Global"] == "true"
        assert headers["X-RateLimit-Scope"] == "global"
        assert headers["Retry-After"] == "1"  # whole seconds, rounded up
        assert headers["Via"]  # Discord's edge: discord.py retries a 429 only with it
        assert http.fake.rate_limited == [("me", "global")]


async def test_the_global_limit_frees_up_after_a_second() -> None:
    async with discord_http() as (http, _, _):
        http.fake.global_rate = (3, 0.2)
        assert [(await http.call("GET", "/users/@me"))[0] for _ in range(4)] == [200] * 3 + [429]
        await asyncio.sleep(0.25)
        assert (await http.call("GET", "/users/@me"))[0] == 200


async def test_interaction_endpoints_are_not_bound_by_the_global_limit() -> None:
    async with discord_http() as (http, _, channel):
        http.fake.global_rate = (2, 60.0)
        record = await interaction(http, channel)
        for _ in range(2):
            await http.call("GET", "/users/@me")
        assert (await http.call("GET", "/users/@me"))[0] == 429
        callback = f"/interactions/{record.id}/{record.token}/callback"
        assert (await http.call("POST", callback, {"type": 5}))[0] == 200
        edit = f"/webhooks/{http.fake.application_id}/{record.token}/messages/@original"
        assert (await http.call("PATCH", edit, {"content": "done"}, bot=False))[0] == 200
        followup = f"/webhooks/{http.fake.application_id}/{record.token}"
        assert (await http.call("POST", followup, {"content": "more"}, bot=False))[0] == 200


async def test_without_a_token_the_global_limit_is_the_ip_addresss() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        http.fake.global_rate = (3, 60.0)  # the bot's token has used 1 (creating the webhook)
        unknown = f"{hook_path(hook)}/messages/1"
        statuses = [(await http.call("GET", unknown, bot=False))[0] for _ in range(4)]
        assert statuses == [404] * 3 + [429]
        assert (await http.call("GET", "/users/@me"))[0] == 200  # the token's bucket is its own


async def test_create_message_has_a_bucket_per_channel_with_discords_headers() -> None:
    async with discord_http() as (http, guild, channel):
        other = http.fake.add_channel(guild, "other")
        path = f"/channels/{channel['id']}/messages"
        answers = [await http.call("POST", path, {"content": f"m{i}"}) for i in range(6)]
        assert [a[0] for a in answers] == [200] * 5 + [429]
        remaining = [a[2]["X-RateLimit-Remaining"] for a in answers[:5]]
        assert remaining == ["4", "3", "2", "1", "0"]
        first = answers[0][2]
        assert first["X-RateLimit-Limit"] == "5"
        assert 0 < float(first["X-RateLimit-Reset-After"]) <= 5.0
        assert float(first["X-RateLimit-Reset"]) > time.time()
        _, body, headers = answers[5]
        assert (body["global"], headers["X-RateLimit-Scope"]) == (False, "user")
        assert headers["Retry-After"] in {"4", "5"}
        elsewhere = await http.call("POST", f"/channels/{other['id']}/messages", {"content": "m"})
        assert elsewhere[0] == 200
        # The bucket's name leaves the channel out (rate-limits.mdx: "non-inclusive of
        # top-level resources in the path").
        assert elsewhere[2]["X-RateLimit-Bucket"] == first["X-RateLimit-Bucket"]
        assert str(channel["id"]) not in first["X-RateLimit-Bucket"]


async def test_discord_py_paces_itself_by_create_messages_headers() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        fake.create_message_rate = (2, 0.5)
        async with connected(fake) as client:
            channel = client.get_channel(int(general["id"]))
            assert isinstance(channel, discord.TextChannel)
            began = time.monotonic()
            for n in range(5):
                await channel.send(f"m{n}")
            took = time.monotonic() - began
        assert [m.content for m in fake.messages[int(general["id"])]] == [f"m{n}" for n in range(5)]
        assert took >= 0.5  # two windows waited out
        assert fake.refusals == []  # it waited on the headers, never hitting a 429
