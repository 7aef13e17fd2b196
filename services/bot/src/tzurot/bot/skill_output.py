"""What the bot shows of a personality's skills: a short status line while one runs, and the
files an answer carries (generated images) as Discord attachments within Discord's limits."""

from __future__ import annotations

import io
from collections.abc import Sequence

import discord

from tzurot.v1 import common_pb2 as common

MAX_FILES = 10
"""Attachments per message."""
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""All attachments of one message together (Discord's limit without boosts)."""

_DOING = {
    "web_research": "researching the web",
    "read_url": "reading the link",
    "generate_image": "drawing",
}


def status_line(name: str, skill: str) -> str:
    """A small subtext line; stealth skills (memory_search) read as plain thinking."""
    return f"-# {name} is {_DOING.get(skill, 'thinking')}…"


def discord_files(files: Sequence[common.GeneratedFile]) -> list[discord.File]:
    """The answer's files as uploads, in order, as many as fit one message."""
    chosen: list[discord.File] = []
    total = 0
    for file in files[:MAX_FILES]:
        if total + len(file.data) > MAX_UPLOAD_BYTES:
            break
        total += len(file.data)
        chosen.append(
            discord.File(
                io.BytesIO(file.data),
                filename=file.filename,
                description=file.description[:1024] or None,
            )
        )
    return chosen
