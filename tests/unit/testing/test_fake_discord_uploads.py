"""The fake Discord refuses uploads Discord refuses: a file over the guild's limit (by boost
tier), a Create Message request over 25 MiB, more than 10 attachments, the bot's files
without Attach Files and its replies without Read Message History. One test per rule, over raw
HTTP."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tzurot.testing.fake_discord import FakeDiscord, Json
from tzurot.testing.fake_discord.rules import Permission

MIB = 1024 * 1024


@dataclass
class Http:
    fake: FakeDiscord
    session: aiohttp.ClientSession

    async def send(
        self, method: str, path: str, body: Json, sizes: Sequence[int] = ()
    ) -> tuple[int, Any]:
        """A multipart request as discord.py sends it: `payload_json` and `files[n]`."""
        form = aiohttp.FormData()
        form.add_field("payload_json", json.dumps(body), content_type="application/json")
        for n, size in enumerate(sizes):
            # A stream, as discord.py sends files (aiohttp warns about large raw bytes).
            form.add_field(f"files[{n}]", io.BytesIO(bytes(size)), filename=f"image-{n}.png")
        headers = {"Authorization": f"Bot {self.fake.token}"}
        url = self.fake.api_base + path
        async with self.session.request(method, url, data=form, headers=headers) as response:
            return response.status, await response.json()


@asynccontextmanager
async def discord_http() -> AsyncIterator[tuple[Http, Json, Json]]:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        yield Http(fake, session), guild, channel


async def webhook_path(http: Http, channel: Json) -> str:
    url = f"{http.fake.api_base}/channels/{channel['id']}/webhooks"
    headers = {"Authorization": f"Bot {http.fake.token}"}
    async with http.session.post(url, json={"name": "T"}, headers=headers) as response:
        assert response.status == 200
        hook = await response.json()
    return f"/webhooks/{hook['id']}/{hook['token']}"


def code(answer: tuple[int, Any]) -> tuple[int, int]:
    status, body = answer
    return status, int(body.get("code", 0)) if status >= 400 else 0


async def test_the_upload_limit_follows_the_boost_tier_and_a_test_can_set_it() -> None:
    async with discord_http() as (http, guild, channel):
        fake = http.fake
        limits = []
        for tier in range(4):
            fake.boost(guild, tier)
            limits.append(fake.filesize_limit(channel) // MIB)
        assert limits == [10, 10, 50, 100]
        fake.filesize_limits[int(guild["id"])] = 3 * MIB
        assert fake.filesize_limit(channel) == 3 * MIB


@pytest.mark.parametrize("route", ["create", "execute", "edit"])
async def test_the_limit_is_per_file_not_per_message(route: str) -> None:
    """Two 6 MiB files pass (12 MiB together); one file a byte over 10 MiB is 413 40005,
    and passes once the server is boosted to tier 2 (50 MiB)."""
    async with discord_http() as (http, guild, channel):
        hook = await webhook_path(http, channel)
        status, sent = await http.send("POST", hook + "?wait=true", {"content": "hi"})
        assert status == 200
        method, path = {
            "create": ("POST", f"/channels/{channel['id']}/messages"),
            "execute": ("POST", hook + "?wait=true"),
            "edit": ("PATCH", f"{hook}/messages/{sent['id']}"),
        }[route]
        status, posted = await http.send(method, path, {}, [6 * MIB, 6 * MIB])
        assert status == 200
        assert [a["size"] for a in posted["attachments"]][-2:] == [6 * MIB, 6 * MIB]
        over = 10 * MIB + 1
        assert code(await http.send(method, path, {"attachments": []}, [over])) == (413, 40005)
        http.fake.boost(guild, 2)
        assert code(await http.send(method, path, {"attachments": []}, [over])) == (200, 0)


@pytest.mark.parametrize("route", ["create", "execute", "edit"])
async def test_only_create_message_caps_a_request_at_25_mib(route: str) -> None:
    """Each file within a tier-3 server's 100 MiB, but three of 9 MiB make one request over
    25 MiB: Create Message refuses it ("The maximum request size when sending a message is
    25 MiB"); Execute Webhook and Edit Webhook Message document no total per request, only
    the per-file limit, and take it."""
    async with discord_http() as (http, guild, channel):
        http.fake.boost(guild, 3)
        hook = await webhook_path(http, channel)
        _, sent = await http.send("POST", hook + "?wait=true", {"content": "hi"})
        method, path = {
            "create": ("POST", f"/channels/{channel['id']}/messages"),
            "execute": ("POST", hook + "?wait=true"),
            "edit": ("PATCH", f"{hook}/messages/{sent['id']}"),
        }[route]
        over = code(await http.send(method, path, {}, [9 * MIB] * 3))
        assert over == ((413, 40005) if route == "create" else (200, 0))
        assert code(await http.send(method, path, {"attachments": []}, [9 * MIB] * 2)) == (200, 0)


@pytest.mark.parametrize("route", ["execute", "edit"])
async def test_a_webhook_sends_what_the_servers_tier_allows_per_file(route: str) -> None:
    """A tier-3 server's 100 MiB per file: a webhook message with a 60 MiB and a 40 MiB file
    is taken; a file over 100 MiB is not."""
    async with discord_http() as (http, guild, channel):
        http.fake.boost(guild, 3)
        hook = await webhook_path(http, channel)
        _, sent = await http.send("POST", hook + "?wait=true", {"content": "hi"})
        method, path = {
            "execute": ("POST", hook + "?wait=true"),
            "edit": ("PATCH", f"{hook}/messages/{sent['id']}"),
        }[route]
        assert code(await http.send(method, path, {}, [60 * MIB, 40 * MIB])) == (200, 0)
        too_big = await http.send(method, path, {"attachments": []}, [100 * MIB + 1])
        assert code(too_big) == (413, 40005)


async def test_a_message_holds_at_most_10_attachments() -> None:
    async with discord_http() as (http, _, channel):
        hook = await webhook_path(http, channel)
        create = f"/channels/{channel['id']}/messages"
        assert code(await http.send("POST", create, {}, [1] * 11)) == (400, 50035)
        assert code(await http.send("POST", hook + "?wait=true", {}, [1] * 11)) == (400, 50035)
        status, sent = await http.send("POST", hook + "?wait=true", {}, [1] * 10)
        assert (status, len(sent["attachments"])) == (200, 10)
        edit = f"{hook}/messages/{sent['id']}"
        assert code(await http.send("PATCH", edit, {}, [1])) == (400, 50035)  # appended: 11
        status, edited = await http.send("PATCH", edit, {"attachments": [{"id": 0}]}, [1])
        assert (status, len(edited["attachments"])) == (200, 1)  # the listed ones only


async def test_the_bots_own_files_need_attach_files() -> None:
    """Create Message with a file (a voice message too) needs Attach Files; the webhook's
    messages are not the bot user's and do not."""
    async with discord_http() as (http, _, channel):
        http.fake.deny_bot(channel, Permission.ATTACH_FILES)
        create = f"/channels/{channel['id']}/messages"
        assert code(await http.send("POST", create, {"content": "a"}, [10])) == (403, 50013)
        assert code(await http.send("POST", create, {"content": "a"})) == (200, 0)
        hook = await webhook_path(http, channel)
        assert code(await http.send("POST", hook + "?wait=true", {}, [10])) == (200, 0)


async def test_a_reply_needs_read_message_history() -> None:
    async with discord_http() as (http, _, channel):
        create = f"/channels/{channel['id']}/messages"
        _, first = await http.send("POST", create, {"content": "first"})
        http.fake.deny_bot(channel, Permission.READ_MESSAGE_HISTORY)
        reply = {"content": "re", "message_reference": {"message_id": first["id"]}}
        assert code(await http.send("POST", create, reply)) == (403, 50013)
        assert code(await http.send("POST", create, {"content": "plain"})) == (200, 0)


async def test_only_uploads_discord_took_are_recorded() -> None:
    """A refused upload (too many files, a rate limit that discord.py then sends again) was
    never uploaded: `uploads` holds the accepted ones only, once each (a test joining an
    export's pieces from it read a 429's piece twice)."""
    async with discord_http() as (http, _, channel):
        hook = await webhook_path(http, channel)
        assert code(await http.send("POST", hook + "?wait=true", {}, [1] * 11)) == (400, 50035)
        assert http.fake.uploads == []
        statuses = [(await http.send("POST", hook + "?wait=true", {}, [3]))[0] for _ in range(8)]
        assert 429 in statuses  # the webhook's bucket ran out
        assert len(http.fake.uploads) == statuses.count(200)
