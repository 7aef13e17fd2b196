"""The fake Discord's voice message rules, one test per rule, over raw HTTP."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp

from tzurot.audio import encode_tone, probe
from tzurot.testing.fake_discord import Json
from tzurot.testing.fake_discord.rules import Permission
from tzurot.testing.fake_discord.voice_messages import IS_VOICE_MESSAGE

from .test_fake_discord_rules import BOT, Http, discord_http, hook_of, hook_path

OGG = encode_tone(1.0, fmt="ogg")
WAVEFORM = base64.b64encode(bytes([10, 80, 200, 80, 10])).decode()


def voice_body(**extra: Any) -> Json:
    body: Json = {
        "flags": IS_VOICE_MESSAGE,
        "attachments": [
            {"id": 0, "filename": "voice-message.ogg", "duration_secs": 1.0, "waveform": WAVEFORM}
        ],
    }
    body.update(extra)
    return body


async def send(
    http: Http,
    path: str,
    body: Json,
    files: list[tuple[str, bytes]] | None = None,
    *,
    bot: bool = True,
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("payload_json", json.dumps(body), content_type="application/json")
    for index, (name, data) in enumerate([("voice-message.ogg", OGG)] if files is None else files):
        form.add_field(f"files[{index}]", data, filename=name)
    headers = {"Authorization": BOT + http.fake.token} if bot else {}
    async with http.session.post(http.fake.api_base + path, data=form, headers=headers) as reply:
        return reply.status, await reply.json()


async def test_a_voice_message_is_stored_with_its_metadata_and_served_file() -> None:
    async with discord_http() as (http, _, channel):
        status, message = await send(http, f"/channels/{channel['id']}/messages", voice_body())
        assert status == 200, message
        assert message["flags"] & IS_VOICE_MESSAGE
        (attachment,) = message["attachments"]
        assert attachment["content_type"] == "audio/ogg"
        assert (attachment["duration_secs"], attachment["waveform"]) == (1.0, WAVEFORM)
        async with http.session.get(attachment["url"]) as served:
            assert probe(await served.read()).codec == "opus"


async def test_a_voice_message_takes_no_content() -> None:
    async with discord_http() as (http, _, channel):
        status, body = await send(
            http, f"/channels/{channel['id']}/messages", voice_body(content="hi")
        )
        assert (status, body["code"]) == (400, 50159)


async def test_a_voice_message_has_exactly_one_attachment() -> None:
    async with discord_http() as (http, _, channel):
        path = f"/channels/{channel['id']}/messages"
        two = [("a.ogg", OGG), ("b.ogg", OGG)]
        assert (await send(http, path, voice_body(), two))[1]["code"] == 50160
        none = voice_body(attachments=[])
        assert (await send(http, path, none, []))[1]["code"] == 50160


async def test_a_voice_message_needs_duration_waveform_and_an_audio_file() -> None:
    async with discord_http() as (http, _, channel):
        path = f"/channels/{channel['id']}/messages"
        no_waveform = voice_body(attachments=[{"id": 0, "duration_secs": 1.0}])
        assert (await send(http, path, no_waveform))[1]["code"] == 50161
        no_duration = voice_body(attachments=[{"id": 0, "waveform": WAVEFORM}])
        assert (await send(http, path, no_duration))[1]["code"] == 50161
        not_audio = await send(http, path, voice_body(), [("voice.txt", OGG)])
        assert not_audio[1]["code"] == 50161
        too_long = base64.b64encode(bytes(257)).decode()
        wide = voice_body(attachments=[{"id": 0, "duration_secs": 1.0, "waveform": too_long}])
        assert (await send(http, path, wide))[1]["code"] == 50161


async def test_sending_a_voice_message_needs_the_permission_and_a_channel_allowing_it() -> None:
    async with discord_http() as (http, guild, channel):
        path = f"/channels/{channel['id']}/messages"
        http.fake.deny_bot(channel, Permission.SEND_VOICE_MESSAGES)
        assert await send(http, path, voice_body()) == (
            403,
            {"code": 50013, "message": "Missing Permissions"},
        )
        other = http.fake.add_channel(guild, "no-voice")
        http.fake.no_voice_channels.add(int(other["id"]))
        status, body = await send(http, f"/channels/{other['id']}/messages", voice_body())
        assert (status, body["code"]) == (400, 50173)


async def test_webhooks_cannot_send_voice_messages_but_can_send_the_audio_file() -> None:
    async with discord_http() as (http, _, channel):
        hook = await hook_of(http, channel)
        path = hook_path(hook) + "?wait=true"
        status, body = await send(http, path, voice_body(), bot=False)
        assert (status, body["code"]) == (400, 50035)
        status, plain = await send(http, path, {"attachments": [{"id": 0}]}, bot=False)
        assert status == 200, plain
        assert plain["attachments"][0]["content_type"] == "audio/ogg"
        assert not plain["flags"] & IS_VOICE_MESSAGE
