"""The fake counts a webhook's requests per webhook whatever thread they go to, as Discord
does: rate limits are per route and top-level resource (discord-api-docs topics/rate-limits:
`webhook_id + webhook_token`), and `thread_id` is only a query parameter."""

from __future__ import annotations

from tests.unit.testing.test_fake_discord_rules import discord_http, hook_of, hook_path


async def test_edits_in_threads_of_one_channel_share_the_webhooks_bucket() -> None:
    async with discord_http() as (http, guild, channel):
        threads = [http.fake.add_thread(guild, channel, f"t{n}") for n in range(3)]
        hook = await hook_of(http, channel)
        sent = []
        for thread in threads:
            status, message, _ = await http.call(
                "POST",
                hook_path(hook),
                {"content": "a"},
                bot=False,
                wait="1",
                thread_id=thread["id"],
            )
            assert status == 200
            sent.append((thread, message))
        answers = []
        for thread, message in [*sent, *sent]:
            path = f"{hook_path(hook)}/messages/{message['id']}"
            answers.append(
                await http.call("PATCH", path, {"content": "b"}, bot=False, thread_id=thread["id"])
            )
        # 3 sends and 2 edits fill the webhook's 5 per 2 s, across the three threads.
        assert [a[0] for a in answers] == [200, 200, 429, 429, 429, 429]
        assert answers[1][2]["X-RateLimit-Remaining"] == "0"
        assert http.fake.rate_limited[0] == ("edit_webhook_message", f"webhook:{hook['id']}")
