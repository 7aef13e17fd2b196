"""History pages: the opaque page token and the token-budget cut. Pure; no I/O.

A page token names the oldest turn of the page by its full sort key (created_at, job_id,
position), so the next page starts right after it, even inside an exchange whose turns
share created_at.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tzurot.memory.domain import StoredTurn
from tzurot.memory.validation import MAX_ID_CHARS
from tzurot.runtime.errors import InvalidArgument

_VERSION = 1
MAX_POSITION = 32767
"""A turn's position is a smallint (memory.turns.position)."""
TURN_OVERHEAD_TOKENS = 4
"""Estimated tokens a chat message costs beyond its text (role, separators)."""


@dataclass(frozen=True)
class HistoryCursor:
    """The sort key of the oldest turn already seen; pages continue with older turns."""

    created_at: datetime
    job_id: str
    position: int

    @classmethod
    def after(cls, turn: StoredTurn) -> HistoryCursor:
        return cls(turn.created_at, turn.job_id, turn.position)


def encode_cursor(cursor: HistoryCursor) -> str:
    payload = {
        "v": _VERSION,
        "t": cursor.created_at.isoformat(),
        "j": cursor.job_id,
        "p": cursor.position,
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> HistoryCursor:
    """The cursor in `token`; InvalidArgument naming page_token when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        if payload["v"] != _VERSION:
            raise ValueError("version")
        created_at = datetime.fromisoformat(payload["t"])
        job_id, position = payload["j"], payload["p"]
        if created_at.tzinfo is None or not isinstance(job_id, str):
            raise ValueError("fields")
        created_at = created_at.astimezone(UTC)  # a year-1 time with an offset: OverflowError
        if "\x00" in job_id or len(job_id) > MAX_ID_CHARS:  # Postgres refuses NUL in text
            raise ValueError("job id")
        if not isinstance(position, int) or isinstance(position, bool):
            raise ValueError("position")
        if not 0 <= position <= MAX_POSITION:
            raise ValueError("position")
    except (
        binascii.Error,
        ValueError,
        KeyError,
        TypeError,
        UnicodeDecodeError,
        OverflowError,
    ):
        raise InvalidArgument(
            "page_token", "page_token is not a token returned by GetHistory"
        ) from None
    return HistoryCursor(created_at, job_id, position)


def estimate_tokens(turn: StoredTurn) -> int:
    """A provider-neutral estimate: the text's characters / 4, rounded up, plus overhead."""
    chars = len(turn.content) + len(turn.author_name)
    chars += sum(len(attachment.description) for attachment in turn.attachments)
    return math.ceil(chars / 4) + TURN_OVERHEAD_TOKENS


def newest_within(newest_first: Sequence[StoredTurn], max_tokens: int) -> list[StoredTurn]:
    """The longest run of newest turns whose estimates fit in `max_tokens` (newest first).

    The run stops at the first turn that does not fit: history never has a hole.
    """
    kept: list[StoredTurn] = []
    spent = 0
    for turn in newest_first:
        spent += estimate_tokens(turn)
        if spent > max_tokens:
            break
        kept.append(turn)
    return kept
