"""The mark a voice clone carries in the user's ElevenLabs account, so one whose answer was lost
is found again.

ElevenLabs makes an Instant Voice Clone and then answers with its id; when that answer is lost
(a timeout, a dropped connection, a caller that gave up) the voice stays in the user's account,
holding one of the few slots their plan has, unknown to us. Each clone therefore carries, at the
end of its description (a field ElevenLabs stores as sent and lists back; its labels are meant
for accent, age, gender…), `[tzurot-clone p=<personality id> a=<attempt id>]`: the attempt id
finds the clone of a call that got no answer, the personality id finds every clone made for that
personality. A voice without the mark, or with another personality's, is never ours to delete.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

MAX_DESCRIPTION = 500
"""What a description may hold (the limit ElevenLabs documents for voice descriptions)."""
_PERSONALITY = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_MARK = re.compile(r"\[tzurot-clone(?: p=([A-Za-z0-9-]{1,64}))? a=([0-9a-f]{32})\]$")


@dataclass(frozen=True)
class CloneMark:
    personality_id: str
    """Empty when the caller named no personality."""
    attempt: str


def valid_personality_id(personality_id: str) -> bool:
    return bool(_PERSONALITY.match(personality_id))


def new_mark(personality_id: str) -> CloneMark:
    """The mark of one clone attempt for the personality (`personality_id` checked first)."""
    return CloneMark(personality_id, uuid.uuid4().hex)


def marked_description(description: str, mark: CloneMark) -> str:
    """The description with the mark at its end, the whole within MAX_DESCRIPTION."""
    owner = f" p={mark.personality_id}" if mark.personality_id else ""
    tag = f"[tzurot-clone{owner} a={mark.attempt}]"
    text = " ".join(description.split())[: MAX_DESCRIPTION - len(tag) - 1]
    return f"{text} {tag}" if text else tag


def read_mark(description: object) -> CloneMark | None:
    """The mark at the end of a listed voice's description; None for a voice not marked."""
    if not isinstance(description, str):
        return None
    found = _MARK.search(description.strip())
    if found is None:
        return None
    return CloneMark(found.group(1) or "", found.group(2))
