"""The fake Discord refuses what Discord refuses of a response's type and pace: a callback type
the interaction does not take (400 50035 naming `type`), follow-ups and edits past the webhook
rate limit an interaction's token shares (429), and an edit of a webhook message that leaves it
empty (400 50006), as for the original response. One test per rule, over raw HTTP."""

from __future__ import annotations

from tests.unit.testing.test_fake_discord_interactions import form_error, modal, responding
from tests.unit.testing.test_fake_discord_rules import discord_http, hook_of, hook_path


async def test_a_slash_command_takes_no_autocomplete_result_nor_component_update() -> None:
    async with responding() as http:
        for kind, data in ((8, {"choices": []}), (7, {"content": "x"}), (6, {}), (1, {})):
            status, body = await http.call("POST", http.callback, {"type": kind, "data": data})
            assert status == 400, (kind, body)
            assert form_error(body, "type") == "BASE_TYPE_CHOICES"
        assert http.fake.refusals[-1][1:] == (400, 50035)
        assert not http.record.responses
        status, _ = await http.call("POST", http.callback, {"type": 4, "data": {"content": "ok"}})
        assert status == 200


async def test_an_autocomplete_takes_only_its_choices() -> None:
    async with responding(focused=True) as http:
        for response in ({"type": 4, "data": {"content": "x"}}, {"type": 5}, modal()):
            status, body = await http.call("POST", http.callback, response)
            assert status == 400, (response, body)
            assert body["errors"]["type"]["_errors"][0]["message"] == "Value must be one of {8}."
        status, _ = await http.call("POST", http.callback, {"type": 8, "data": {"choices": []}})
        assert status == 200


async def test_a_modal_submit_is_not_answered_with_a_modal_nor_a_message_update() -> None:
    async with responding() as http:
        assert (await http.call("POST", http.callback, modal()))[0] == 200
        submitted = await http.fake.submit_modal(
            http.record, http.fake.make_user("a"), {"name": "n"}
        )
        http.record = submitted
        for response in (modal(), {"type": 7, "data": {"content": "x"}}, {"type": 6}):
            status, body = await http.call("POST", http.callback, response)
            assert status == 400, (response, body)
            assert form_error(body, "type") == "BASE_TYPE_CHOICES"
        assert (await http.call("POST", http.callback, {"type": 5, "data": {"flags": 64}}))[
            0
        ] == 200


async def test_followups_and_edits_share_the_tokens_webhook_rate_limit() -> None:
    async with responding() as http:
        fake = http.fake
        await http.call("POST", http.callback, {"type": 5})
        for n in range(4):
            assert (await http.call("POST", http.followup, {"content": f"piece {n}"}))[0] == 200
        assert (await http.call("PATCH", http.original, {"content": "done"}))[0] == 200
        status, body = await http.call("POST", http.followup, {"content": "one too many"})
        assert status == 429
        assert body["global"] is False
        assert 0 < body["retry_after"] <= 2
        status, _ = await http.call("PATCH", http.original, {"content": "again"})
        assert status == 429
        bucket = f"interaction-webhook:{http.record.token}"
        assert fake.rate_limited == [("interaction_followup", bucket), ("interaction_edit", bucket)]
        # Another interaction's token is another webhook.
        channel = fake.channels[int(http.record.data["channel_id"])]
        http.record = await fake.slash(channel, fake.make_user("bob"), "help")
        await http.call("POST", http.callback, {"type": 5})
        assert (await http.call("POST", http.followup, {"content": "mine"}))[0] == 200


async def test_an_edit_of_a_webhook_message_may_not_leave_it_empty() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        path = hook_path(hook)
        status, sent, _ = await http.call("POST", path, {"content": "hi"}, bot=False, wait="true")
        assert status == 200
        edit = f"{path}/messages/{sent['id']}"
        for body in ({"content": ""}, {"content": None}):
            status, answer, _ = await http.call("PATCH", edit, body, bot=False)
            assert (status, answer["code"]) == (400, 50006)
        kept = http.fake.find(int(sent["id"]))
        assert kept is not None
        assert kept.content == "hi"
        # An embed, or a file, keeps it from being empty.
        rich = {"content": "see https://example.com", "embeds": [{"title": "card"}]}
        status, sent, _ = await http.call("POST", path, rich, bot=False, wait="true")
        assert status == 200
        status, _, _ = await http.call(
            "PATCH", f"{path}/messages/{sent['id']}", {"content": ""}, bot=False
        )
        assert status == 200
        status, sent = await http.upload(f"{path}?wait=true", {"content": "file"}, 10)
        assert status == 200
        status, _, _ = await http.call(
            "PATCH", f"{path}/messages/{sent['id']}", {"content": ""}, bot=False
        )
        assert status == 200
        status, answer, _ = await http.call(
            "PATCH", f"{path}/messages/{sent['id']}", {"attachments": []}, bot=False
        )
        assert (status, answer["code"]) == (400, 50006)


async def test_a_deferral_may_carry_no_flag_but_ephemeral() -> None:
    async with responding() as http:
        status, body = await http.call("POST", http.callback, {"type": 5, "data": {"flags": 4}})
        assert status == 400
        assert form_error(body, "data", "flags") == "BASE_TYPE_INVALID"
        status, _ = await http.call("POST", http.callback, {"type": 5, "data": {"flags": 64}})
        assert status == 200


async def test_followups_and_edits_go_to_the_applications_webhook() -> None:
    async with responding() as http:
        await http.call("POST", http.callback, {"type": 5})
        wrong = f"/webhooks/{http.fake.snowflake()}/{http.record.token}"
        status, body = await http.call("POST", wrong, {"content": "x"})
        assert (status, body["code"]) == (404, 10015)
        status, body = await http.call("PATCH", f"{wrong}/messages/@original", {"content": "x"})
        assert (status, body["code"]) == (404, 10015)
        assert (await http.call("POST", http.followup, {"content": "x"}))[0] == 200
