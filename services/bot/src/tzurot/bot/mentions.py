"""Discord mention markup in a message, turned into words the model can read.

`<#id>` becomes `#name` with the channel's topic in a note, `<@&id>` becomes `@role`, `<@id>`
becomes `@display name`. At most `max_channels` channels and `max_roles` roles are resolved per
message (the rest stay as they are).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

CHANNEL = re.compile(r"<#(\d+)>")
ROLE = re.compile(r"<@&(\d+)>")
USER = re.compile(r"<@!?(\d+)>")


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    topic: str | None


def resolve_mentions(
    content: str,
    *,
    channel: Callable[[int], ChannelInfo | None],
    role: Callable[[int], str | None],
    user: Callable[[int], str | None],
    max_channels: int = 5,
    max_roles: int = 5,
) -> str:
    notes: list[str] = []
    channels: dict[int, ChannelInfo | None] = {}

    def sub_channel(m: re.Match[str]) -> str:
        cid = int(m.group(1))
        if cid not in channels:
            if len(channels) >= max_channels:
                return m.group(0)
            channels[cid] = channel(cid)
            info = channels[cid]
            if info is not None and info.topic:
                notes.append(f"#{info.name} is about: {info.topic}")
        info = channels[cid]
        return f"#{info.name}" if info else m.group(0)

    roles: dict[int, str | None] = {}

    def sub_role(m: re.Match[str]) -> str:
        rid = int(m.group(1))
        if rid not in roles:
            if len(roles) >= max_roles:
                return m.group(0)
            roles[rid] = role(rid)
        name = roles[rid]
        return f"@{name}" if name else m.group(0)

    def sub_user(m: re.Match[str]) -> str:
        name = user(int(m.group(1)))
        return f"@{name}" if name else m.group(0)

    text = ROLE.sub(sub_role, CHANNEL.sub(sub_channel, content))
    text = USER.sub(sub_user, text)
    if notes:
        text = text + "\n\n[" + "; ".join(notes) + "]"
    return text
