"""Attachments the bot sends, and Discord's voice message rules (discord-api-docs,
resources/message "Voice Messages", topics/opcodes-and-status-codes 50159-50173).

A voice message is a message with the IS_VOICE_MESSAGE flag (1 << 13): no content, embeds or
stickers (50159), exactly one audio attachment (50160) whose attachment object carries
`duration_secs` and a base64 `waveform` (50161; Discord honours them only for an `audio/*`
content type), sent by someone with Send Voice Messages (50013), in a channel that allows
voice messages (50173). Webhooks may set only SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS and
IS_COMPONENTS_V2 (resources/webhook "Execute Webhook"): a voice flag there is an invalid form
body. Voice messages cannot be edited (50162). A sent file's content type is what Discord
infers from its name (discord.py sends every file as application/octet-stream).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tzurot.testing.fake_discord.rules import error
from tzurot.testing.fake_discord.wire import Json, Upload

IS_VOICE_MESSAGE = 1 << 13
SUPPRESS_NOTIFICATIONS = 1 << 12
SEND_VOICE_MESSAGES = 1 << 46
MAX_WAVEFORM_POINTS = 256
_TYPES = {
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/ogg",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "txt": "text/plain",
}


def content_type_of(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return _TYPES.get(ext, "application/octet-stream")


def _metadata(body: Json, index: int) -> Json:
    for attachment in body.get("attachments") or []:
        if isinstance(attachment, dict) and str(attachment.get("id")) == str(index):
            return attachment
    return {}


def voice_message_error(  # noqa: PLR0911  # one refusal per Discord rule
    body: Json, files: list[Upload], *, webhook: bool
) -> Json | None:
    """Discord's refusal of a voice message (status 400), or None when it is fine or not one."""
    flags = int(body.get("flags") or 0)
    if not flags & IS_VOICE_MESSAGE:
        return None
    if webhook:
        return error(
            50035,
            "Invalid Form Body",
            flags={"_errors": [{"code": "INVALID_FLAGS", "message": "Invalid flags"}]},
        )
    if body.get("content") or body.get("embeds") or body.get("sticker_ids") or body.get("poll"):
        return error(50159, "Voice messages do not support additional content.")
    if len(files) != 1:
        return error(50160, "Voice messages must have a single audio attachment.")
    meta = _metadata(body, 0)
    duration, waveform = meta.get("duration_secs"), meta.get("waveform")
    if (
        not content_type_of(files[0].filename).startswith("audio/")
        or not isinstance(duration, int | float)
        or isinstance(duration, bool)
        or duration <= 0
        or not isinstance(waveform, str)
        or not waveform
    ):
        return error(50161, "Voice messages must have supporting metadata.")
    try:
        points = base64.b64decode(waveform, validate=True)
    except (binascii.Error, ValueError):
        return error(50161, "Voice messages must have supporting metadata.")
    if len(points) > MAX_WAVEFORM_POINTS:
        return error(50161, "Voice messages must have supporting metadata.")
    return None


def attachment_objects(state: Any, channel: Json, body: Json, files: list[Upload]) -> list[Json]:
    """Attachment objects for the sent files (served by the fake's CDN), with the voice
    metadata when the message is a voice message."""
    voice = bool(int(body.get("flags") or 0) & IS_VOICE_MESSAGE)
    made: list[Json] = []
    for index, sent in enumerate(files):
        attachment = state.upload(channel, sent.filename, sent.data, content_type_of(sent.filename))
        meta = _metadata(body, index)
        if meta.get("description"):
            attachment["description"] = meta["description"]
        if voice:
            attachment["duration_secs"] = meta["duration_secs"]
            attachment["waveform"] = meta["waveform"]
        made.append(attachment)
    return made


CANNOT_SEND_VOICE_HERE = error(50173, "You cannot send voice messages in this channel.")
