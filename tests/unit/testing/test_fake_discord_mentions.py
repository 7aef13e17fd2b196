"""`allowed_mentions` as resources/message.mdx "Allowed Mentions Object" states it: `parse`
only of roles/users/everyone, at most 100 `users` and `roles`, `parse` exclusive with a list
of its kind on every route (interaction responses too), and `replied_user` pinging the
replied-to author (only when true)."""

from __future__ import annotations

import pytest

from tests.unit.testing.test_fake_discord_interactions import form_error, responding
from tests.unit.testing.test_fake_discord_rules import discord_http, hook_of, hook_path
from tzurot.testing.fake_discord import Json

REFUSED: list[tuple[Json, tuple[str | int, ...], str]] = [
    ({"parse": ["users", "channels"]}, ("parse", 1), "BASE_TYPE_CHOICES"),
    ({"users": [str(n) for n in range(101)]}, ("users",), "BASE_TYPE_MAX_LENGTH"),
    ({"roles": [str(n) for n in range(101)]}, ("roles",), "BASE_TYPE_MAX_LENGTH"),
    ({"parse": ["roles"], "roles": ["1"]}, (), "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE"),
]
TAKEN: list[Json] = [
    {"parse": ["users", "roles", "everyone"]},
    {"users": [str(n) for n in range(100)], "roles": [str(n) for n in range(100)]},
    {"parse": ["users", "roles"], "users": []},  # an empty list is no conflict
]


@pytest.mark.parametrize(("allowed", "path", "code"), REFUSED)
async def test_create_message_and_execute_webhook_refuse_what_discord_refuses(
    allowed: Json, path: tuple[str | int, ...], code: str
) -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        body = {"content": "hi", "allowed_mentions": allowed}
        for path_, bot in ((f"/channels/{channel['id']}/messages", True), (hook_path(hook), False)):
            status, answer, _ = await http.call("POST", path_, body, bot=bot)
            assert status == 400
            assert form_error(answer, "allowed_mentions", *path) == code


async def test_what_discord_takes_is_taken() -> None:
    async with discord_http() as (http, _, channel):
        for allowed in TAKEN:
            body = {"content": "hi", "allowed_mentions": allowed}
            path = f"/channels/{channel['id']}/messages"
            assert (await http.call("POST", path, body))[0] == 200, allowed


@pytest.mark.parametrize(("allowed", "path", "code"), REFUSED)
async def test_interaction_responses_follow_the_same_rules(
    allowed: Json, path: tuple[str | int, ...], code: str
) -> None:
    async with responding() as http:
        message = {"content": "hi", "allowed_mentions": allowed}
        status, body = await http.call("POST", http.callback, {"type": 4, "data": message})
        assert status == 400
        assert form_error(body, "data", "allowed_mentions", *path) == code
        assert (await http.call("POST", http.callback, {"type": 5}))[0] == 200
        for method, route in (("PATCH", http.original), ("POST", http.followup)):
            status, body = await http.call(method, route, message)
            assert status == 400, route
            assert form_error(body, "allowed_mentions", *path) == code
        taken = {"content": "hi", "allowed_mentions": {"parse": [], "users": ["1"]}}
        assert (await http.call("PATCH", http.original, taken))[0] == 200


async def test_a_reply_pings_the_author_only_with_replied_user() -> None:
    async with discord_http() as (http, _, channel):
        alice = http.fake.make_user("alice")
        said = await http.fake.say(channel, alice, "hello")
        reference = {"message_id": str(said.id)}
        cases: list[tuple[Json | None, bool]] = [
            (None, False),  # the defaults name no replied_user: "defaults to false"
            ({"parse": []}, False),
            ({"parse": [], "replied_user": True}, True),
            ({"replied_user": False}, False),
        ]
        for allowed, pinged in cases:
            body: Json = {"content": "hi", "message_reference": reference}
            if allowed is not None:
                body["allowed_mentions"] = allowed
            http.fake.buckets.clear()  # Create Message's own limit is not this test's
            status, sent, _ = await http.call("POST", f"/channels/{channel['id']}/messages", body)
            assert status == 200
            (found,) = http.fake.pings[int(sent["id"])]
            assert (int(alice["id"]) in found.users) is pinged, allowed
