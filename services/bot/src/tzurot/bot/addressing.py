"""What the bot does with whom a message addresses: the mentions the gateway found
(ResolveMentions, which alone knows the names, aliases and their rules) taken out of the text
the model reads, and whom a reply addresses.

A reply to one of our answers addresses the personality the answer was posted as, only while
the gateway still finds it for the replying user (`reply_addressee`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tzurot.v1 import common_pb2 as common


@dataclass(frozen=True)
class Addressed:
    personality: common.Personality
    matched_text: str
    offset: int


@dataclass(frozen=True)
class PostedAs:
    """Whom one of our webhook messages was posted as: the personality's id when the bot
    knows it (this process posted it, or the job that posted it names it; "" for a message
    without a job, a greeting) and the name to ask the gateway for now."""

    personality_id: str
    name: str


def strip_mentions(content: str, addressed: Sequence[Addressed]) -> str:
    """The content without the mention texts (so the model reads "hi", not "@Lilith hi")."""
    out, cursor = [], 0
    for item in sorted(addressed, key=lambda a: a.offset):
        out.append(content[cursor : item.offset])
        cursor = item.offset + len(item.matched_text)
    out.append(content[cursor:])
    text = re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()
    return text.lstrip(",:;").strip()


def reply_addressee(posted: PostedAs, now: common.Personality | None) -> common.Personality | None:
    """Whom a reply to a message posted as `posted` addresses: that personality as the gateway
    finds `posted.name` for the replying user now (`now`). Nobody when the gateway finds none
    (deleted, being deleted, or someone else's private one: the gateway answers all three
    alike, and so does the reply) or when the name now means another personality (a new one
    on a freed slug, an alias): a reply never reaches a personality its message was not posted
    as, and nothing is posted under the name of one that is gone. The message is then
    addressed as if it replied to nothing (the channel's activation, if any)."""
    if now is None:
        return None
    if posted.personality_id and now.id != posted.personality_id:
        return None
    return now
