"""What a message holds, refused as Discord refuses it, and taken as Discord takes it: replies
to a message that is gone (unless `fail_if_not_exists` is false) or is a system message, the
embed limits on every route that sends embeds, the bot's embeds without Embed Links, posts into
channels that hold only threads, webhook names. One test per rule, over raw HTTP; each with
what still passes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tzurot.testing.fake_discord import FakeDiscord, Json
from tzurot.testing.fake_discord.rules import CATEGORY, Permission


@dataclass
class Http:
    fake: FakeDiscord
    session: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, body: Any = None, **params: str
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bot {self.fake.token}"}
        async with self.session.request(
            method, self.fake.api_base + path, json=body, headers=headers, params=params
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def hook(self, channel: Json, name: str = "T") -> str:
        status, hook = await self.call(
            "POST", f"/channels/{channel['id']}/webhooks", {"name": name}
        )
        assert status == 200, hook
        return f"/webhooks/{hook['id']}/{hook['token']}"


@asynccontextmanager
async def discord_http() -> AsyncIterator[tuple[Http, Json, Json]]:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        yield Http(fake, session), guild, channel


def form_error(body: Any, *path: str | int) -> str:
    """The first `_errors` code at `path` of a 50035 body."""
    assert body["code"] == 50035, body
    node = body["errors"]
    for key in path:
        node = node[str(key)]
    return str(node["_errors"][0]["code"])


def create(channel: Json) -> str:
    return f"/channels/{channel['id']}/messages"


# ---- replies ----


async def test_a_reply_to_a_deleted_message_is_refused_unless_fail_if_not_exists_is_false() -> None:
    """resources/message "Message Reference Structure": `fail_if_not_exists` defaults to true;
    false sends the message as a normal (non-reply) message."""
    async with discord_http() as (http, _, channel):
        said = await http.fake.say(channel, http.fake.make_user("alice"), "hi")
        await http.fake.delete_message(said)
        reference = {"message_id": str(said.id), "channel_id": channel["id"]}
        status, body = await http.call(
            "POST", create(channel), {"content": "re", "message_reference": reference}
        )
        assert status == 400
        assert form_error(body, "message_reference") == "MESSAGE_REFERENCE_UNKNOWN_MESSAGE"
        explicit = {**reference, "fail_if_not_exists": True}
        status, body = await http.call(
            "POST", create(channel), {"content": "re", "message_reference": explicit}
        )
        assert (status, body["code"]) == (400, 50035)
        assert http.fake.refusals[-2:] == [("create_message", 400, 50035)] * 2
        assert [m.content for m in http.fake.messages[int(channel["id"])]] == ["hi"]
        lenient = {**reference, "fail_if_not_exists": False}
        status, sent = await http.call(
            "POST", create(channel), {"content": "re", "message_reference": lenient}
        )
        assert status == 200
        assert (sent["type"], sent.get("message_reference")) == (0, None)


async def test_a_reply_names_the_message_it_replies_to() -> None:
    """ "Replies": type 19, `message_reference` naming the message, channel and guild, and the
    message itself in `referenced_message`."""
    async with discord_http() as (http, guild, channel):
        said = await http.fake.say(channel, http.fake.make_user("alice"), "hi")
        status, sent = await http.call(
            "POST",
            create(channel),
            {"content": "re", "message_reference": {"message_id": str(said.id)}},
        )
        assert status == 200
        assert sent["type"] == 19
        assert sent["message_reference"] == {
            "type": 0,
            "message_id": str(said.id),
            "channel_id": channel["id"],
            "guild_id": guild["id"],
        }
        assert sent["referenced_message"]["content"] == "hi"


async def test_a_replys_referenced_message_is_null_once_its_target_is_deleted() -> None:
    """Message Object: "If the field exists but is null, the referenced message was
    deleted"; and a reply to a reply carries its target without that target's own
    `referenced_message` (not the whole chain)."""
    async with discord_http() as (http, _guild, channel):
        said = await http.fake.say(channel, http.fake.make_user("alice"), "secret words")
        _, reply = await http.call(
            "POST",
            create(channel),
            {"content": "re", "message_reference": {"message_id": str(said.id)}},
        )
        _, reply2 = await http.call(
            "POST",
            create(channel),
            {"content": "re2", "message_reference": {"message_id": reply["id"]}},
        )
        assert reply2["referenced_message"]["content"] == "re"
        assert "referenced_message" not in reply2["referenced_message"]
        await http.fake.delete_message(said)
        status, fetched = await http.call("GET", f"{create(channel)}/{reply['id']}")
        assert status == 200
        assert "referenced_message" in fetched
        assert fetched["referenced_message"] is None
        _, still = await http.call("GET", f"{create(channel)}/{reply2['id']}")
        assert still["referenced_message"]["content"] == "re"


@pytest.mark.parametrize("where", ["unknown id", "another channel"])
async def test_a_reply_to_a_message_not_in_the_channel_is_unknown(where: str) -> None:
    async with discord_http() as (http, guild, channel):
        elsewhere = http.fake.add_channel(guild, "elsewhere")
        said = await http.fake.say(elsewhere, http.fake.make_user("alice"), "hi")
        message_id = "12345" if where == "unknown id" else str(said.id)
        status, body = await http.call(
            "POST",
            create(channel),
            {"content": "re", "message_reference": {"message_id": message_id}},
        )
        assert status == 400
        assert form_error(body, "message_reference") == "MESSAGE_REFERENCE_UNKNOWN_MESSAGE"


@pytest.mark.parametrize("fail_if_not_exists", [True, False])
async def test_a_system_message_cannot_be_replied_to(fail_if_not_exists: bool) -> None:
    """Create Message: "The referenced message must exist and cannot be a system message";
    `fail_if_not_exists` is about existence only."""
    async with discord_http() as (http, _, channel):
        joined = await http.fake.say(
            channel, http.fake.make_user("alice"), "", extra={"type": 7}
        )  # USER_JOIN
        reference = {"message_id": str(joined.id), "fail_if_not_exists": fail_if_not_exists}
        status, body = await http.call(
            "POST", create(channel), {"content": "welcome", "message_reference": reference}
        )
        assert status == 400
        code = form_error(body, "message_reference")
        assert code == "REPLIES_CANNOT_REPLY_TO_SYSTEM_MESSAGE"


# ---- embeds ----

EMBED_CASES: list[tuple[str, Json | list[Json], tuple[str | int, ...], str]] = [
    ("title", {"title": "t" * 257}, (0, "title"), "BASE_TYPE_MAX_LENGTH"),
    ("description", {"description": "d" * 4097}, (0, "description"), "BASE_TYPE_MAX_LENGTH"),
    (
        "fields",
        {"fields": [{"name": "n", "value": "v"}] * 26},
        (0, "fields"),
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "field name",
        {"fields": [{"name": "n" * 257, "value": "v"}]},
        (0, "fields", 0, "name"),
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "field value",
        {"fields": [{"name": "n", "value": "v" * 1025}]},
        (0, "fields", 0, "value"),
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "field without a value",
        {"fields": [{"name": "n", "value": "  "}]},
        (0, "fields", 0, "value"),
        "BASE_TYPE_REQUIRED",
    ),
    ("footer", {"footer": {"text": "f" * 2049}}, (0, "footer", "text"), "BASE_TYPE_MAX_LENGTH"),
    ("author", {"author": {"name": "a" * 257}}, (0, "author", "name"), "BASE_TYPE_MAX_LENGTH"),
    ("11 embeds", [{"title": "t"}] * 11, (), "BASE_TYPE_MAX_LENGTH"),
    (
        "6001 in all",
        [{"description": "d" * 4000}, {"description": "d" * 2000, "title": "t"}],
        (),
        "MAX_EMBED_SIZE_EXCEEDED",
    ),
]
# What passes: each field at its limit, 6000 characters in all; whitespace around a text is
# trimmed, not counted.
AT_THE_LIMITS = [
    {
        "title": "  " + "t" * 256 + "  ",
        "description": "d" * 3000,
        "footer": {"text": "f" * 1000},
        "author": {"name": "a" * 256},
        "fields": [{"name": "n" * 256, "value": "v" * 1024}] * 1,
    },
    {"description": "d" * (6000 - 256 - 3000 - 1000 - 256 - 256 - 1024)},
    *[{"image": {"url": "https://example.com/a.png"}}] * 8,
]


def embeds_of(case: Json | list[Json]) -> list[Json]:
    return case if isinstance(case, list) else [case]


@pytest.mark.parametrize(
    ("case", "embeds", "path", "code"), EMBED_CASES, ids=[c[0] for c in EMBED_CASES]
)
@pytest.mark.parametrize("route", ["create", "execute", "edit"])
async def test_embed_limits(
    route: str, case: str, embeds: Json | list[Json], path: tuple[str | int, ...], code: str
) -> None:
    """resources/message "Embed Limits" on Create Message, Execute Webhook and Edit Webhook
    Message: 400 50035 at the field's path."""
    async with discord_http() as (http, _, channel):
        hook = await http.hook(channel)
        _, sent = await http.call("POST", hook, {"content": "x"}, wait="true")
        method, path_of_route = {
            "create": ("POST", create(channel)),
            "execute": ("POST", hook),
            "edit": ("PATCH", f"{hook}/messages/{sent['id']}"),
        }[route]
        status, body = await http.call(method, path_of_route, {"embeds": embeds_of(embeds)})
        assert status == 400, (case, body)
        assert form_error(body, "embeds", *path) == code
        status, body = await http.call(method, path_of_route, {"embeds": AT_THE_LIMITS})
        assert status in (200, 204), body


async def test_interaction_responses_follow_the_embed_limits() -> None:
    # Its interaction runs a `/help` no app registered: the fake is told to take it.
    async with (
        FakeDiscord(validate_slash_options=False) as fake,
        aiohttp.ClientSession() as session,
    ):
        http = Http(fake, session)
        channel = fake.add_channel(fake.add_guild(), "general")
        record = await fake.slash(channel, fake.make_user("alice"), "help")
        callback = f"/interactions/{record.id}/{record.token}/callback"
        too_long = {"type": 4, "data": {"embeds": [{"title": "t" * 257}]}}
        status, body = await http.call("POST", callback, too_long)
        assert status == 400
        assert form_error(body, "data", "embeds", 0, "title") == "BASE_TYPE_MAX_LENGTH"
        status, _ = await http.call(
            "POST", callback, {"type": 4, "data": {"embeds": AT_THE_LIMITS}}
        )
        assert status == 200
        followup = f"/webhooks/{fake.application_id}/{record.token}"
        status, body = await http.call(
            "POST", followup, {"embeds": [{"title": "t"}] * 3 + [{"description": "d" * 5998}]}
        )
        assert status == 400
        assert form_error(body, "embeds") == "MAX_EMBED_SIZE_EXCEEDED"


async def test_the_bots_embeds_need_embed_links() -> None:
    """Without Embed Links the bot's embeds are dropped (a message left with nothing is 403
    50013, discord-api-docs issue 2601); a webhook's embeds are not the bot user's."""
    async with discord_http() as (http, _, channel):
        hook = await http.hook(channel)
        http.fake.deny_bot(channel, Permission.EMBED_LINKS)
        embed = {"title": "card"}
        status, sent = await http.call(
            "POST", create(channel), {"content": "see", "embeds": [embed]}
        )
        assert (status, sent["content"], sent["embeds"]) == (200, "see", [])
        status, body = await http.call("POST", create(channel), {"embeds": [embed]})
        assert (status, body["code"]) == (403, 50013)
        status, shown = await http.call("POST", hook, {"embeds": [embed]}, wait="true")
        assert (status, shown["embeds"]) == (200, [embed])


# ---- channels that hold only threads ----


@pytest.mark.parametrize("kind", ["forum", "media", "category"])
async def test_no_message_goes_into_a_channel_that_holds_only_threads(kind: str) -> None:
    """resources/channel "Channel Types": GUILD_FORUM and GUILD_MEDIA "can only contain
    threads" (a category, only channels): 400 50008. A webhook of a forum or a media channel
    posts only with `thread_id` (220001)."""
    async with discord_http() as (http, guild, _):
        if kind == "category":
            place = http.fake.add_channel(guild, "lounge", kind=CATEGORY)
        else:
            place = http.fake.add_forum(guild, "gallery", media=kind == "media")
        status, body = await http.call("POST", create(place), {"content": "x"})
        assert (status, body["code"]) == (400, 50008)
        if kind == "category":
            status, body = await http.call(
                "POST", f"/channels/{place['id']}/webhooks", {"name": "T"}
            )
            assert (status, body["code"]) == (400, 50024)
            return
        post = http.fake.add_thread(guild, place, "first post")
        hook = await http.hook(place)
        status, body = await http.call("POST", hook, {"content": "a"})
        assert (status, body["code"]) == (400, 220001)
        status, _ = await http.call("POST", hook, {"content": "a"}, thread_id=post["id"])
        assert status == 204
        status, _ = await http.call("POST", create(post), {"content": "in the post"})
        assert status == 200


@pytest.mark.parametrize("media", [False, True])
async def test_a_forum_webhook_starts_a_post_with_thread_name(media: bool) -> None:
    """resources/webhook Execute Webhook: in a forum or media channel, `thread_name` creates a
    thread of that name holding the message; both `thread_name` and `thread_id` is 220002,
    `thread_name` in any other channel 220003, and a name over 100 characters is refused."""
    async with discord_http() as (http, guild, channel):
        forum = http.fake.add_forum(guild, "gallery", media=media)
        hook = await http.hook(forum)
        status, sent = await http.call(
            "POST", hook, {"content": "a", "thread_name": "New post"}, wait="true"
        )
        assert status == 200
        thread = http.fake.channels[int(sent["channel_id"])]
        assert (thread["name"], thread["parent_id"]) == ("New post", forum["id"])
        other = http.fake.add_thread(guild, forum, "older post")
        status, body = await http.call(
            "POST", hook, {"content": "a", "thread_name": "x"}, thread_id=other["id"]
        )
        assert (status, body["code"]) == (400, 220002)
        status, body = await http.call("POST", hook, {"content": "a", "thread_name": "x" * 101})
        assert (status, body["code"]) == (400, 50035)
        plain = await http.hook(channel)
        status, body = await http.call("POST", plain, {"content": "a", "thread_name": "x"})
        assert (status, body["code"]) == (400, 220003)


# ---- webhook names ----


@pytest.mark.parametrize("name", ["a```b", "everyone", "HERE", "a@b#c:d", "x" * 80])
async def test_what_only_usernames_may_not_hold_is_a_fine_webhook_name(name: str) -> None:
    """resources/webhook "Create Webhook": webhook names follow the nickname guidelines (up to
    80 characters) and may not contain "clyde" or "discord"; what resources/user forbids
    "additionally ... for usernames" does not apply. The same for Execute Webhook's
    `username`, the webhook's name for one message."""
    async with discord_http() as (http, _, channel):
        status, hook = await http.call(
            "POST", f"/channels/{channel['id']}/webhooks", {"name": name}
        )
        assert (status, hook["name"]) == (200, name)
        path = f"/webhooks/{hook['id']}/{hook['token']}"
        status, sent = await http.call(
            "POST", path, {"content": "hi", "username": name}, wait="true"
        )
        assert (status, sent["author"]["username"]) == (200, name)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Clyde", "USERNAME_INVALID_CONTAINS"),
        ("my DISCORD bot", "USERNAME_INVALID_CONTAINS"),
        ("x" * 81, "BASE_TYPE_BAD_LENGTH"),
        ("\u200b \u200b", "BASE_TYPE_BAD_LENGTH"),
    ],
)
async def test_refused_webhook_names(name: str, code: str) -> None:
    async with discord_http() as (http, _, channel):
        status, body = await http.call(
            "POST", f"/channels/{channel['id']}/webhooks", {"name": name}
        )
        assert status == 400
        assert form_error(body, "name") == code
        hook = await http.hook(channel)
        status, body = await http.call("POST", hook, {"content": "hi", "username": name})
        assert status == 400
        assert form_error(body, "username") == code
