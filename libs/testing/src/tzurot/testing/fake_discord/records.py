"""What the fake records: messages as stored, interactions and gateway sessions."""

from __future__ import annotations

import json
import time
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
    # The `allowed_mentions` of the send and of every edit (None where it was not set).
    allowed_mentions: list[Json | None] = field(default_factory=list)

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

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def embeds(self) -> list[Json]:
        return list(self.data.get("embeds") or [])


@dataclass
class FakeInteraction:
    """One interaction the test started; `responses` are the bot's callbacks and follow-ups."""

    id: int
    token: str
    data: Json
    responses: list[Json] = field(default_factory=list)
    created: float = field(default_factory=time.monotonic)
    # Follow-ups sent right after a defer: Discord turns them into an edit of the loading
    # message, a deprecated behaviour (its docs ask for "Edit Original Interaction Response").
    deprecated_followups: int = 0
    # How many attachments the original response has now (an edit may not leave it empty).
    original_attachments: int = 0
    # The ids of the follow-up messages sent with this token (the ones an edit may name).
    followup_ids: list[int] = field(default_factory=list)

    @property
    def attachment_size_limit(self) -> int:
        return int(self.data["attachment_size_limit"])

    @property
    def acknowledged(self) -> bool:
        return any(r.get("type") in {4, 5, 6, 7, 8, 9} for r in self.responses)

    def original(self) -> Json | None:
        """The original response as it stands: its content after the last edit."""
        shown: Json | None = None
        for response in self.responses:
            if response.get("type") in {4, 5}:
                shown = dict(response.get("data") or {})
            elif response.get("type") == "edit" and shown is not None:
                shown.update(response.get("data") or {})
        return shown

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
        """True when every message the bot answered with is ephemeral (an edit keeps the flag
        of the message it edits: Discord cannot change it)."""
        flags = [
            (r.get("data") or {}).get("flags", 0)
            for r in self.responses
            if r.get("type") in {4, 5, "followup"}
        ]
        return bool(flags) and all(int(f or 0) & 64 for f in flags)


@dataclass
class Session:
    ws: web.WebSocketResponse
    shard: tuple[int, int] = (0, 1)
    seq: int = 0
    identified: bool = False
    intents: int = 0
    session_id: str = ""
    sent: list[Json] = field(default_factory=list)  # dispatches, kept for a RESUME
