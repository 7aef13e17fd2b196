"""The fake Discord refuses what Discord refuses: one test per rule, over raw HTTP."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tzurot.testing.fake_discord import FakeDiscord, FakeInteraction, Json
from tzurot.testing.fake_discord.mentions import pings
from tzurot.testing.fake_discord.rules import Permission

BOT = "Bot "


@dataclass
class Http:
    fake: FakeDiscord
    session: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, body: Any = None, *, bot: bool = True, **params: str
    ) -> tuple[int, Any, dict[str, str]]:
        headers = {"Authorization": BOT + self.fake.token} if bot else {}
        async with self.session.request(
            method, self.fake.api_base + path, json=body, headers=headers, params=params
        ) as response:
            text = await response.text()
            data = json.loads(text) if text else None
            return response.status, data, dict(response.headers)

    async def upload(self, path: str, body: Json, size: int) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("payload_json", json.dumps(body), content_type="application/json")
        form.add_field("files[0]", b"x" * size, filename="a.bin")
        async with self.session.post(self.fake.api_base + path, data=form) as response:
            return response.status, await response.json()


@asynccontextmanager
async def discord_http() -> AsyncIterator[tuple[Http, Json, Json]]:
    # Its interactions run a `/help` no app registered: the fake is told to take it.
    async with (
        FakeDiscord(validate_slash_options=False) as fake,
        aiohttp.ClientSession() as session,
    ):
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        yield Http(fake, session), guild, channel


async def hook_of(http: Http, channel: Json) -> Json:
    status, hook, _ = await http.call("POST", f"/channels/{channel['id']}/webhooks", {"name": "T"})
    assert status == 200, hook
    return dict(hook)


def hook_path(hook: Json) -> str:
    return f"/webhooks/{hook['id']}/{hook['token']}"


async def interaction(http: Http, channel: Json) -> FakeInteraction:
    return await http.fake.slash(channel, http.fake.make_user("alice"), "help")


# ---- interactions ----


async def test_an_initial_response_after_3_seconds_is_unknown_interaction() -> None:
    async with discord_http() as (http, _, channel):
        http.fake.interaction_deadline = 0.05
        record = await interaction(http, channel)
        await asyncio.sleep(0.1)
        status, body, _ = await http.call(
            "POST", f"/interactions/{record.id}/{record.token}/callback", {"type": 5}
        )
        assert (status, body["code"]) == (404, 10062)


async def test_a_response_within_the_deadline_is_taken_once() -> None:
    async with discord_http() as (http, _, channel):
        record = await interaction(http, channel)
        path = f"/interactions/{record.id}/{record.token}/callback"
        assert (await http.call("POST", path, {"type": 5}))[0] == 200
        status, body, _ = await http.call("POST", path, {"type": 5})
        assert (status, body["code"]) == (400, 40060)


async def test_followups_and_edits_need_an_initial_response() -> None:
    async with discord_http() as (http, _, channel):
        record = await interaction(http, channel)
        base = f"/webhooks/{http.fake.application_id}/{record.token}"
        status, body, _ = await http.call("POST", base, {"content": "hi"})
        assert (status, body["code"]) == (404, 10015)
        status, body, _ = await http.call("PATCH", base + "/messages/@original", {"content": "x"})
        assert (status, body["code"]) == (404, 10015)
        callback = f"/interactions/{record.id}/{record.token}/callback"
        await http.call("POST", callback, {"type": 5, "data": {"flags": 64}})
        status, _, _ = await http.call("PATCH", base + "/messages/@original", {"content": "x"})
        assert status == 200
        assert record.original() == {"flags": 64, "content": "x"}
        assert record.deprecated_followups == 0


async def test_a_followup_right_after_a_defer_is_recorded_as_deprecated() -> None:
    async with discord_http() as (http, _, channel):
        record = await interaction(http, channel)
        await http.call("POST", f"/interactions/{record.id}/{record.token}/callback", {"type": 5})
        await http.call(
            "POST", f"/webhooks/{http.fake.application_id}/{record.token}", {"content": "a"}
        )
        assert record.deprecated_followups == 1


async def test_files_larger_than_the_interactions_limit_are_refused() -> None:
    async with discord_http() as (http, _, channel):
        record = await http.fake.slash(
            channel, http.fake.make_user("a"), "help", attachment_size_limit=100
        )
        callback = f"/interactions/{record.id}/{record.token}/callback"
        status, body = await http.upload(callback, {"type": 4, "data": {"content": "f"}}, 101)
        assert (status, body["code"]) == (413, 40005)
        status, _ = await http.upload(callback, {"type": 4, "data": {"content": "f"}}, 100)
        assert status == 200


# ---- permissions ----


async def test_webhooks_need_manage_webhooks() -> None:
    async with discord_http() as (http, _, channel):
        http.fake.deny_bot(channel, Permission.MANAGE_WEBHOOKS)
        for method, body in (("GET", None), ("POST", {"name": "T"})):
            status, answer, _ = await http.call(method, f"/channels/{channel['id']}/webhooks", body)
            assert (status, answer["code"]) == (403, 50013)


async def test_posting_needs_send_messages_and_a_hidden_channel_is_missing_access() -> None:
    async with discord_http() as (http, guild, channel):
        http.fake.deny_bot(channel, Permission.SEND_MESSAGES)
        path = f"/channels/{channel['id']}/messages"
        status, body, _ = await http.call("POST", path, {"content": "hi"})
        assert (status, body["code"]) == (403, 50013)
        hidden = http.fake.add_channel(guild, "secret")
        http.fake.deny_bot(hidden, Permission.VIEW_CHANNEL)
        status, body, _ = await http.call(
            "POST", f"/channels/{hidden['id']}/messages", {"content": "x"}
        )
        assert (status, body["code"]) == (403, 50001)


async def test_threads_need_send_messages_in_threads() -> None:
    async with discord_http() as (http, guild, channel):
        thread = http.fake.add_thread(guild, channel, "t")
        http.fake.deny_bot(channel, Permission.SEND_MESSAGES_IN_THREADS)
        status, body, _ = await http.call(
            "POST", f"/channels/{thread['id']}/messages", {"content": "x"}
        )
        assert (status, body["code"]) == (403, 50013)
        status, _, _ = await http.call(
            "POST", f"/channels/{channel['id']}/messages", {"content": "x"}
        )
        assert status == 200


async def test_a_member_overwrite_hides_a_channel_from_that_member_only() -> None:
    async with discord_http() as (http, guild, channel):
        fake = http.fake
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        staff = fake.add_channel(guild, "staff")
        fake.hide_channel_from(staff, alice)
        thread = fake.add_thread(guild, staff, "t")
        for hidden in (staff, thread):  # a thread takes its parent's overwrites
            assert not fake.member_permissions(hidden, alice) & Permission.VIEW_CHANNEL
            with pytest.raises(PermissionError, match="50001"):
                await fake.say(hidden, alice, "let me in")
        said = await fake.say(staff, bob, "the payroll")
        status, _, _ = await http.call("GET", f"/channels/{staff['id']}/messages/{said.id}")
        assert status == 200  # the bot reads it: its view is its own, not Alice's
        # Discord's order: @everyone's overwrite, then the roles', then the member's (last wins).
        lounge = fake.add_channel(guild, "lounge")
        view = str(Permission.VIEW_CHANNEL)
        lounge["permission_overwrites"] += [
            {"id": guild["id"], "type": 0, "allow": "0", "deny": view},
            {"id": bob["id"], "type": 1, "allow": view, "deny": "0"},
        ]
        with pytest.raises(PermissionError, match="50001"):
            await fake.say(lounge, alice, "hi")
        await fake.say(lounge, bob, "hi")
        # Seeing is not sending.
        channel["permission_overwrites"].append(
            {"id": alice["id"], "type": 1, "allow": "0", "deny": str(Permission.SEND_MESSAGES)}
        )
        with pytest.raises(PermissionError, match="50013"):
            await fake.say(channel, alice, "hi")


async def test_a_private_thread_is_for_its_members_and_manage_threads_only() -> None:
    async with discord_http() as (http, guild, channel):
        fake = http.fake
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        thread = fake.add_thread(guild, channel, "plans", private=True)
        fake.join_thread(thread, bob)
        said = await fake.say(thread, bob, "the surprise party")
        with pytest.raises(PermissionError, match="50001"):
            await fake.say(thread, alice, "let me in")  # she sees #general, not the thread
        # Not a member, so the bot may neither read it nor ask who is in it.
        message = f"/channels/{thread['id']}/messages/{said.id}"
        members = f"/channels/{thread['id']}/thread-members"
        status, body, _ = await http.call("GET", message)
        assert (status, body["code"]) == (403, 50001)
        status, body, _ = await http.call("GET", f"{members}/{bob['id']}")
        assert (status, body["code"]) == (403, 50001)
        fake.join_thread(thread, fake.bot_user)
        status, _, _ = await http.call("GET", message)
        assert status == 200
        status, body, _ = await http.call("GET", f"{members}/{bob['id']}", with_member="true")
        assert status == 200
        assert (body["id"], body["user_id"], body["member"]["user"]["id"]) == (
            thread["id"],
            bob["id"],
            bob["id"],
        )
        assert {"join_timestamp", "flags"} <= body.keys()
        status, body, _ = await http.call("GET", f"{members}/{alice['id']}")
        assert (status, body["code"]) == (404, 10007)
        # Manage Threads on the parent opens every private thread in it.
        other = fake.add_thread(guild, channel, "other", private=True)
        channel["permission_overwrites"].append(
            {"id": alice["id"], "type": 1, "allow": str(Permission.MANAGE_THREADS), "deny": "0"}
        )
        assert fake.member_permissions(other, alice) & Permission.VIEW_CHANNEL
        await fake.say(other, alice, "moderating")
        assert fake.refusals == [("get_message", 403, 50001), ("get_thread_member", 403, 50001)]


# ---- webhooks ----


@pytest.mark.parametrize(
    "name",
    ["", "x" * 81, "Clyde", "my discord bot", "c\u200blyde", "\u200b"],
)
async def test_refused_webhook_usernames(name: str) -> None:
    """Create Webhook's name rules (1-80 characters, no "clyde" or "discord"; what only
    usernames may not hold is fine: test_fake_discord_messages.py)."""
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        status, body, _ = await http.call(
            "POST", hook_path(hook), {"content": "hi", "username": name}, bot=False, wait="true"
        )
        if name == "":  # an empty username means the webhook's own name
            assert status == 200
        else:
            assert (status, body["code"]) == (400, 50035)


async def test_a_hair_space_breaks_a_forbidden_word_like_pluralkit_does() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        status, _, _ = await http.call(
            "POST", hook_path(hook), {"content": "hi", "username": "c\u200alyde"}, bot=False
        )
        assert status == 204


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/a.png", "https://", "https://a b"])
async def test_avatar_url_must_be_a_well_formed_http_url(url: str) -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        status, body, _ = await http.call(
            "POST", hook_path(hook), {"content": "hi", "avatar_url": url}, bot=False
        )
        assert (status, body["code"]) == (400, 50035)


async def test_content_limits() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        status, body, _ = await http.call(
            "POST", hook_path(hook), {"content": "x" * 2001}, bot=False
        )
        assert (status, body["code"]) == (400, 50035)
        status, body, _ = await http.call("POST", hook_path(hook), {"content": ""}, bot=False)
        assert (status, body["code"]) == (400, 50006)


async def test_links_get_previews_unless_the_message_suppresses_embeds() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        jump = "https://discord.com/channels/1/2/3"  # a message link: no embed
        text = f"see https://example.com/a and <https://example.com/quiet> {jump}"
        _, shown, _ = await http.call(
            "POST", hook_path(hook), {"content": text}, bot=False, wait="true"
        )
        assert shown["embeds"] == [{"type": "link", "url": "https://example.com/a"}]
        _, hidden, _ = await http.call(
            "POST", hook_path(hook), {"content": text, "flags": 4}, bot=False, wait="true"
        )
        assert (hidden["flags"], hidden["embeds"]) == (4, [])
        # the flag stays through an edit; only SUPPRESS_EMBEDS can be set by one
        message = f"{hook_path(hook)}/messages/{hidden['id']}"
        _, edited, _ = await http.call(
            "PATCH", message, {"content": "now https://example.com/b"}, bot=False
        )
        assert (edited["flags"], edited["embeds"]) == (4, [])
        _, unflagged, _ = await http.call("PATCH", message, {"flags": 1 << 6}, bot=False)
        assert unflagged["flags"] == 0
        assert unflagged["embeds"] == [{"type": "link", "url": "https://example.com/b"}]


async def multipart(
    http: Http, method: str, path: str, body: Json, files: list[tuple[str, bytes]]
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("payload_json", json.dumps(body), content_type="application/json")
    for n, (name, data) in enumerate(files):
        form.add_field(f"files[{n}]", data, filename=name, content_type="image/png")
    async with http.session.request(method, http.fake.api_base + path, data=form) as response:
        return response.status, await response.json()


async def test_files_become_the_messages_attachments_and_an_edit_keeps_what_it_lists() -> None:
    """Edit Message: files are appended; with `attachments`, exactly the listed ones remain."""
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        status, sent = await multipart(
            http, "POST", hook_path(hook) + "?wait=true", {"content": "hi"}, [("a.png", b"A")]
        )
        assert status == 200
        (first,) = sent["attachments"]
        assert (first["filename"], first["size"]) == ("a.png", 1)
        edit = f"{hook_path(hook)}/messages/{sent['id']}"
        status, edited = await multipart(http, "PATCH", edit, {}, [("b.png", b"BB")])
        assert status == 200
        assert [a["filename"] for a in edited["attachments"]] == ["a.png", "b.png"]
        status, replaced = await multipart(
            http,
            "PATCH",
            edit,
            {"attachments": [{"id": 0, "filename": "c.png", "description": "a moon"}]},
            [("c.png", b"CCC")],
        )
        assert status == 200
        (only,) = replaced["attachments"]  # v10: the array lists all that remain
        assert (only["filename"], only["description"]) == ("c.png", "a moon")
        async with http.session.get(only["url"]) as served:
            assert await served.read() == b"CCC"
        status, kept, _ = await http.call(
            "PATCH", edit, {"attachments": [{"id": only["id"]}]}, bot=False
        )
        assert [a["id"] for a in kept["attachments"]] == [only["id"]]


async def test_an_enforced_nonce_returns_the_earlier_message_and_creates_nothing() -> None:
    async with discord_http() as (http, _, channel):
        path = f"/channels/{channel['id']}/messages"
        status, first, _ = await http.call(
            "POST", path, {"content": "notes", "nonce": "n-1", "enforce_nonce": True}
        )
        assert status == 200
        assert first["nonce"] == "n-1"
        status, again, _ = await http.call(
            "POST", path, {"content": "notes", "nonce": "n-1", "enforce_nonce": True}
        )
        assert (status, again["id"]) == (200, first["id"])
        assert [m.id for m in http.fake.messages[int(channel["id"])]] == [int(first["id"])]
        # Without enforce_nonce a nonce dedupes nothing; a different nonce is a new message.
        status, loose, _ = await http.call("POST", path, {"content": "notes", "nonce": "n-1"})
        assert status == 200
        assert loose["id"] != first["id"]
        status, other, _ = await http.call(
            "POST", path, {"content": "notes", "nonce": "n-2", "enforce_nonce": True}
        )
        assert other["id"] not in (first["id"], loose["id"])
        assert len(http.fake.messages[int(channel["id"])]) == 3


async def test_a_nonce_is_at_most_25_characters() -> None:
    async with discord_http() as (http, _, channel):
        path = f"/channels/{channel['id']}/messages"
        status, body, _ = await http.call(
            "POST", path, {"content": "x", "nonce": "n" * 26, "enforce_nonce": True}
        )
        assert (status, body["code"]) == (400, 50035)
        assert "nonce" in body["errors"]
        status, _, _ = await http.call("POST", path, {"content": "x", "nonce": "n" * 25})
        assert status == 200


async def test_a_message_in_a_thread_is_edited_and_deleted_only_with_its_thread_id() -> None:
    async with discord_http() as (http, guild, channel):
        thread = http.fake.add_thread(guild, channel, "t")
        hook = await hook_of(http, channel)
        _, sent, _ = await http.call(
            "POST",
            hook_path(hook),
            {"content": "a"},
            bot=False,
            wait="true",
            thread_id=thread["id"],
        )
        message = f"{hook_path(hook)}/messages/{sent['id']}"
        status, body, _ = await http.call("PATCH", message, {"content": "b"}, bot=False)
        assert (status, body["code"]) == (404, 10008)
        status, body, _ = await http.call("DELETE", message, bot=False)
        assert (status, body["code"]) == (404, 10008)
        status, _, _ = await http.call(
            "PATCH", message, {"content": "b"}, bot=False, thread_id=thread["id"]
        )
        assert status == 200
        status, _, _ = await http.call("DELETE", message, bot=False, thread_id=thread["id"])
        assert status == 204


async def test_a_webhook_reads_only_its_own_messages_and_needs_no_permission() -> None:
    """Get Webhook Message: a message that webhook posted (another webhook's, a user's, one
    deleted: 10008 Unknown Message), in a thread only with its `thread_id`; no permission in
    the channel is needed, where the bot's own read is refused."""
    async with discord_http() as (http, guild, channel):
        thread = http.fake.add_thread(guild, channel, "t")
        hook, other = await hook_of(http, channel), await hook_of(http, channel)
        said = await http.fake.say(channel, http.fake.make_user("alice"), "hi")
        _, sent, _ = await http.call("POST", hook_path(hook), {"content": "a"}, bot=False, wait="1")
        _, in_thread, _ = await http.call(
            "POST", hook_path(hook), {"content": "b"}, bot=False, wait="1", thread_id=thread["id"]
        )
        http.fake.deny_bot(channel, Permission.READ_MESSAGE_HISTORY)

        def read(path: str, message: Json, **params: str) -> Awaitable[tuple[int, Any, Any]]:
            return http.call("GET", f"{path}/messages/{message['id']}", bot=False, **params)

        status, _, _ = await http.call("GET", f"/channels/{channel['id']}/messages/{sent['id']}")
        assert status == 403  # the bot may not read the channel's history
        status, body, _ = await read(hook_path(hook), sent)
        assert (status, body["content"]) == (200, "a")  # its webhook may
        for path, message, params in (
            (hook_path(other), sent, {}),  # another webhook's
            (hook_path(hook), {"id": said.id}, {}),  # a user's
            (hook_path(hook), in_thread, {}),  # in a thread, without its thread_id
            (hook_path(hook), sent, {"thread_id": thread["id"]}),  # not in that thread
        ):
            status, body, _ = await read(path, message, **params)
            assert (status, body["code"]) == (404, 10008), (path, message, params)
        status, body, _ = await read(hook_path(hook), in_thread, thread_id=thread["id"])
        assert (status, body["content"]) == (200, "b")
        status, body, _ = await read(f"/webhooks/{hook['id']}/not-its-token", sent)
        assert (status, body["code"]) == (401, 50027)  # Invalid Webhook Token
        status, body, _ = await read(f"/webhooks/1/{hook['token']}", sent)
        assert (status, body["code"]) == (404, 10015)  # Unknown Webhook
        await http.call("DELETE", f"{hook_path(hook)}/messages/{sent['id']}", bot=False)
        status, body, _ = await read(hook_path(hook), sent)
        assert (status, body["code"]) == (404, 10008)


async def test_a_forum_takes_webhook_messages_only_in_a_post() -> None:
    async with discord_http() as (http, guild, _):
        forum = http.fake.add_forum(guild, "ideas")
        post = http.fake.add_thread(guild, forum, "first post")
        hook = await hook_of(http, forum)
        status, body, _ = await http.call("POST", hook_path(hook), {"content": "a"}, bot=False)
        assert (status, body["code"]) == (400, 220001)
        status, _, _ = await http.call(
            "POST", hook_path(hook), {"content": "a"}, bot=False, thread_id=post["id"]
        )
        assert status == 204
        status, body, _ = await http.call(
            "POST", f"/channels/{forum['id']}/messages", {"content": "x"}
        )
        assert (status, body["code"]) == (400, 50008)


async def test_a_thread_cannot_hold_a_webhook() -> None:
    async with discord_http() as (http, guild, channel):
        thread = http.fake.add_thread(guild, channel, "t")
        status, body, _ = await http.call(
            "POST", f"/channels/{thread['id']}/webhooks", {"name": "T"}
        )
        assert (status, body["code"]) == (400, 50024)


async def test_webhook_caps_per_channel_and_per_guild() -> None:
    async with discord_http() as (http, guild, channel):
        http.fake.add_foreign_webhooks(channel, 15)
        status, body, _ = await http.call(
            "POST", f"/channels/{channel['id']}/webhooks", {"name": "T"}
        )
        assert (status, body["code"]) == (400, 30007)
        others = [http.fake.add_channel(guild, f"c{i}") for i in range(71)]
        for other in others[:-1]:
            http.fake.add_foreign_webhooks(other, 14)
        http.fake.add_foreign_webhooks(others[-1], 1000 - 15 - 70 * 14)
        status, body, _ = await http.call(
            "POST", f"/channels/{others[-1]['id']}/webhooks", {"name": "T"}
        )
        assert (status, body["code"]) == (400, 30058)


# ---- rate limits ----


async def test_a_webhook_is_limited_to_5_requests_per_2_seconds() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        answers = [
            await http.call("POST", hook_path(hook), {"content": f"m{i}"}, bot=False)
            for i in range(6)
        ]
        assert [a[0] for a in answers] == [204] * 5 + [429]
        _, body, headers = answers[-1]
        assert 0 < body["retry_after"] <= 2.0
        assert body["global"] is False
        assert headers["X-RateLimit-Limit"] == "5"
        assert headers["X-RateLimit-Remaining"] == "0"
        # Whole seconds, rounded up, as rate-limits.mdx's examples (65 for 64.57)
        assert headers["Retry-After"] == str(math.ceil(body["retry_after"]))
        assert headers["X-RateLimit-Scope"] == "user"
        assert answers[3][2]["X-RateLimit-Remaining"] == "1"


async def test_reading_a_webhooks_message_counts_against_the_webhooks_limit() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        _, sent, _ = await http.call("POST", hook_path(hook), {"content": "a"}, bot=False, wait="1")
        message = f"{hook_path(hook)}/messages/{sent['id']}"
        answers = [await http.call("GET", message, bot=False) for _ in range(5)]
        assert [a[0] for a in answers] == [200] * 4 + [429]


async def test_a_channel_takes_about_30_webhook_messages_a_minute() -> None:
    async with discord_http() as (http, _, channel):
        http.fake.channel_webhook_rate = (3, 60.0)
        first, second = await hook_of(http, channel), await hook_of(http, channel)
        for hook in (first, first, second):
            assert (await http.call("POST", hook_path(hook), {"content": "m"}, bot=False))[0] == 204
        status, body, _ = await http.call("POST", hook_path(second), {"content": "m"}, bot=False)
        assert status == 429
        assert body["retry_after"] > 50


# ---- mentions ----


async def test_pings_follow_allowed_mentions_and_the_content() -> None:
    async with discord_http() as (http, guild, channel):
        alice, bob = http.fake.make_user("alice"), http.fake.make_user("bob")
        role = http.fake.add_role(guild, "mods")
        role["mentionable"] = True
        hook = await hook_of(http, channel)
        content = f"@everyone <@{alice['id']}> <@{bob['id']}> <@&{role['id']}>"
        cases: list[tuple[Json | None, set[str], bool]] = [
            (None, {alice["id"], bob["id"]}, False),  # webhooks parse users by default
            ({"parse": []}, set(), False),
            ({"parse": [], "users": [alice["id"]]}, {alice["id"]}, False),
            ({"parse": ["everyone"]}, set(), True),
        ]
        for allowed, users, everyone in cases:
            body: Json = {"content": content}
            if allowed is not None:
                body["allowed_mentions"] = allowed
            _, sent, _ = await http.call("POST", hook_path(hook), body, bot=False, wait="true")
            (found,) = http.fake.pings[int(sent["id"])]
            assert ({str(u) for u in found.users}, found.everyone) == (users, everyone)
            await asyncio.sleep(0.45)  # stay inside the webhook's rate limit
        status, answer, _ = await http.call(
            "POST",
            hook_path(hook),
            {"content": content, "allowed_mentions": {"parse": ["users"], "users": [alice["id"]]}},
            bot=False,
        )
        assert (status, answer["code"]) == (400, 50035)


def test_mentions_not_in_the_content_never_ping() -> None:
    found = pings("hello", {"parse": ["users", "everyone"], "users": []}, can_mention_everyone=True)
    assert not found
