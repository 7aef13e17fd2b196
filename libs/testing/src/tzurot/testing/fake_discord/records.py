"""What the fake records: messages as stored, interactions and gateway sessions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiohttp import web

from tzurot.testing.fake_discord.wire import Json


@dataclass
class Posted:
    """A message as the fake stores it: the JSON Discord would send, plus what was asked."""

    data: Json
    avatar_url: str | None = None
    edits: list[str] = field(default_factory=list)
    deleted: bool = False

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def content(self) -> str:
        return str(self.data["content"])

    @property
    def author_name(self) -> str:
        return str(self.data["author"]["username"])

    @property
    def webhook_id(self) -> int | None:
        value = self.data.get("webhook_id")
        return int(value) if value else None

    @property
    def channel_id(self) -> int:
        return int(self.data["channel_id"])


@dataclass
class FakeInteraction:
    """One interaction the test started; `responses` are the bot's callbacks and follow-ups."""

    id: int
    token: str
    data: Json
    responses: list[Json] = field(default_factory=list)
    files: list[bytes] = field(default_factory=list)
    """Files the bot attached to its answers, in order."""

    def modal(self) -> Json | None:
        """The modal the bot opened (callback type 9), if any."""
        for response in self.responses:
            if response.get("type") == 9:
                return dict(response["data"])
        return None

    def texts(self) -> list[str]:
        """Every message text the bot answered with (callbacks, follow-ups, edits, embeds)."""
        out: list[str] = []
        for response in self.responses:
            body = response.get("data") or {}
            out.append(str(body.get("content") or ""))
            for embed in body.get("embeds") or []:
                out.append(json.dumps(embed, ensure_ascii=False))
        return out

    def choices(self) -> list[Json]:
        for response in self.responses:
            if response.get("type") == 8:
                return list(response["data"]["choices"])
        return []

    def is_ephemeral(self) -> bool:
        flags = [(r.get("data") or {}).get("flags", 0) for r in self.responses if r.get("data")]
        return bool(flags) and all(int(f or 0) & 64 for f in flags)


@dataclass
class Session:
    ws: web.WebSocketResponse
    shard: tuple[int, int] = (0, 1)
    seq: int = 0
    identified: bool = False
    intents: int = 0
