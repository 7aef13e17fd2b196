"""What the bot shows of a personality's skills: a short status line while one runs, and the
files an answer carries (generated images) as Discord attachments within Discord's limits.

Discord's limits (discord-api-docs, reference "Uploading Files" and resources/message "Create
Message"): the upload limit applies to each file (10 MiB, more in a boosted server:
`Guild.filesize_limit`), a request is at most 25 MiB, a message has at most 10 attachments.
The files are split into as many messages as these need, in order.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import discord
import structlog

from tzurot.v1 import common_pb2 as common

log = structlog.get_logger(__name__)

MAX_FILES = 10
"""Attachments per message."""
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024
"""Bytes per file where the server's limit is unknown (Discord's default)."""
MAX_REQUEST_BYTES = 25 * 1024 * 1024
"""One request, files and JSON together."""
REQUEST_HEADROOM = 256 * 1024
"""Kept free in each request for the JSON payload and the multipart framing."""

_DOING = {
    "web_research": "researching the web",
    "read_url": "reading the link",
    "generate_image": "drawing",
}


def status_line(name: str, skill: str) -> str:
    """A small subtext line; stealth skills (memory_search) read as plain thinking."""
    return f"-# {name} is {_DOING.get(skill, 'thinking')}…"


def upload_batches(
    files: Sequence[common.GeneratedFile], *, filesize_limit: int = DEFAULT_FILESIZE_LIMIT
) -> list[list[common.GeneratedFile]]:
    """The files in order, grouped into messages Discord takes: at most 10 a message and 25
    MiB a request. A file over the server's limit is left out (logged): inference draws none
    over Discord's default 10 MiB, so it would be a bug."""
    batches: list[list[common.GeneratedFile]] = []
    size = 0
    for file in files:
        if len(file.data) > filesize_limit:
            log.error("bot.file_too_large", filename=file.filename, size=len(file.data))
            continue
        full = batches and (
            len(batches[-1]) == MAX_FILES
            or size + len(file.data) > MAX_REQUEST_BYTES - REQUEST_HEADROOM
        )
        if not batches or full:
            batches.append([])
            size = 0
        batches[-1].append(file)
        size += len(file.data)
    return batches


def discord_files(files: Sequence[common.GeneratedFile]) -> list[discord.File]:
    """One message's files as uploads (a discord.File is read once: made for each send)."""
    return [
        discord.File(
            io.BytesIO(file.data),
            filename=file.filename,
            description=file.description[:1024] or None,
        )
        for file in files
    ]
