"""An attachment's `description` (alt text) is at most 1024 characters (resources/message.mdx
"Attachment Request Structure"): longer is 400 50035 at `attachments.n.description`, on every
route that sends or edits files; 1024 is taken and kept."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.unit.testing.test_fake_discord_interactions import form_error, responding
from tests.unit.testing.test_fake_discord_rules import Http, discord_http, hook_of, hook_path
from tzurot.testing.fake_discord import Json


async def upload(http: Http, path: str, body: Json) -> tuple[int, Any]:
    """A one-file multipart send, as discord.py makes it, with the bot's token."""
    form = aiohttp.FormData()
    form.add_field("payload_json", json.dumps(body), content_type="application/json")
    form.add_field("files[0]", b"x" * 10, filename="a.png")
    headers = {"Authorization": f"Bot {http.fake.token}"}
    url = http.fake.api_base + path
    async with http.session.post(url, data=form, headers=headers) as response:
        return response.status, await response.json()


def described(size: int) -> Json:
    return {"content": "file", "attachments": [{"id": 0, "description": "d" * size}]}


async def test_create_message_and_webhooks_refuse_a_description_over_1024() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        for path in (f"/channels/{channel['id']}/messages", f"{hook_path(hook)}?wait=true"):
            http.fake.buckets.clear()  # the routes' own limits are not this test's
            status, body = await upload(http, path, described(1025))
            assert status == 400, path
            assert form_error(body, "attachments", 0, "description") == "BASE_TYPE_MAX_LENGTH"
            status, sent = await upload(http, path, described(1024))
            assert status == 200, path
            assert sent["attachments"][0]["description"] == "d" * 1024
        edit = f"{hook_path(hook)}/messages/{sent['id']}"
        kept = sent["attachments"][0]["id"]
        too_long = {"attachments": [{"id": kept, "description": "d" * 1025}]}
        status, body, _ = await http.call("PATCH", edit, too_long, bot=False)
        assert status == 400
        assert form_error(body, "attachments", 0, "description") == "BASE_TYPE_MAX_LENGTH"


async def test_interaction_responses_refuse_a_description_over_1024() -> None:
    async with responding() as http:
        status, body = await http.call(
            "POST", http.callback, {"type": 4, "data": described(1025)}, files=1
        )
        assert status == 400
        assert form_error(body, "data", "attachments", 0, "description") == "BASE_TYPE_MAX_LENGTH"
        answer = {"type": 4, "data": described(1024)}
        assert (await http.call("POST", http.callback, answer, files=1))[0] == 200
        status, body = await http.call("POST", http.followup, described(1025), files=1)
        assert status == 400
        assert form_error(body, "attachments", 0, "description") == "BASE_TYPE_MAX_LENGTH"
