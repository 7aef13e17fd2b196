"""Edits as Discord refuses them: Edit Followup Message "Functions the same as Edit Webhook
Message" (interactions/receiving-and-responding.mdx), so only a follow-up that token sent is
found (else 404 10008 Unknown Message); Edit Webhook Message's 50035 names the key that failed
in `errors` (reference.mdx "Error Messages")."""

from __future__ import annotations

from tests.unit.testing.test_fake_discord_interactions import form_error, responding
from tests.unit.testing.test_fake_discord_rules import discord_http, hook_of, hook_path


async def test_an_edit_of_a_followup_the_token_did_not_send_is_unknown_message() -> None:
    async with responding() as http:
        answered = {"type": 4, "data": {"content": "a"}}
        assert (await http.call("POST", http.callback, answered))[0] == 200
        for unknown in ("1", str(http.record.id), "latest"):
            status, body = await http.call(
                "PATCH", f"{http.followup}/messages/{unknown}", {"content": "b"}
            )
            assert (status, body["code"]) == (404, 10008), unknown
        assert http.fake.refusals[-1] == ("interaction_edit", 404, 10008)
        status, sent = await http.call("POST", http.followup, {"content": "more"})
        assert status == 200
        status, edited = await http.call(
            "PATCH", f"{http.followup}/messages/{sent['id']}", {"content": "more, edited"}
        )
        assert status == 200
        assert (edited["id"], edited["content"]) == (sent["id"], "more, edited")


async def test_an_edit_of_a_webhook_message_over_2000_characters_names_content() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        _, sent, _ = await http.call("POST", hook_path(hook), {"content": "a"}, bot=False, wait="1")
        edit = f"{hook_path(hook)}/messages/{sent['id']}"
        status, body, _ = await http.call("PATCH", edit, {"content": "x" * 2001}, bot=False)
        assert status == 400
        assert form_error(body, "content") == "BASE_TYPE_MAX_LENGTH"
        assert (await http.call("PATCH", edit, {"content": "x" * 2000}, bot=False))[0] == 200
