"""Get Webhook and Delete Webhook by id (resources/webhook.mdx): the bot's token, Manage
Webhooks in the webhook's channel (for Get, not when the bot's application owns it), 404 10015
for an unknown id. The token routes `/webhooks/{id}/{token}` still take no token."""

from __future__ import annotations

from tests.unit.testing.test_fake_discord_rules import discord_http, hook_of, hook_path
from tzurot.testing.fake_discord.rules import Permission


async def test_get_and_delete_webhook_need_the_bots_token() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        for method in ("GET", "DELETE"):
            status, _, _ = await http.call(method, f"/webhooks/{hook['id']}", bot=False)
            assert status == 401, method
        assert int(hook["id"]) in http.fake.webhooks
        # The token routes need none.
        sent = await http.call("POST", hook_path(hook), {"content": "hi"}, bot=False)
        assert sent[0] == 204


async def test_an_unknown_webhook_id_is_unknown_webhook() -> None:
    async with discord_http() as (http, _, _):
        for method in ("GET", "DELETE"):
            status, body, _ = await http.call(method, f"/webhooks/{http.fake.snowflake()}")
            assert (status, body["code"]) == (404, 10015), method


async def test_without_manage_webhooks_only_the_apps_own_webhook_can_be_read() -> None:
    async with discord_http() as (http, _, channel):
        own = await hook_of(http, channel)
        foreign = http.fake.add_webhook(channel, "Other", owner=http.fake.owner)
        http.fake.deny_bot(channel, Permission.MANAGE_WEBHOOKS)
        assert (await http.call("GET", f"/webhooks/{own['id']}"))[0] == 200
        status, body, _ = await http.call("GET", f"/webhooks/{foreign['id']}")
        assert (status, body["code"]) == (403, 50013)
        for hook in (own, foreign):
            status, body, _ = await http.call("DELETE", f"/webhooks/{hook['id']}")
            assert (status, body["code"]) == (403, 50013)
        assert {int(own["id"]), int(foreign["id"])} <= set(http.fake.webhooks)


async def test_with_manage_webhooks_any_webhook_is_read_and_deleted() -> None:
    async with discord_http() as (http, _, channel):
        foreign = http.fake.add_webhook(channel, "Other", owner=http.fake.owner)
        assert (await http.call("GET", f"/webhooks/{foreign['id']}"))[0] == 200
        assert (await http.call("DELETE", f"/webhooks/{foreign['id']}"))[0] == 204
        assert int(foreign["id"]) not in http.fake.webhooks
