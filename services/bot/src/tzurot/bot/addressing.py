"""Which personalities a message addresses by `@Name` or `@alias`, and by a reply.

Names may have several words and are matched case-insensitively; at each `@` the longest
known name wins, so `@the night queen hi` picks "the night queen" over "the night". A name
must end at a word boundary. Each personality answers once, in order of first mention.

A reply to one of our answers addresses the personality the answer was posted as, only while
the gateway still finds it for the replying user (`reply_addressee`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tzurot.runtime.folding import fold
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


def names_of(personality: common.Personality) -> list[str]:
    names = [personality.display_name, personality.slug, *personality.aliases]
    return [n for n in dict.fromkeys(n.strip() for n in names) if n]


def match_mentions(
    content: str, personalities: Iterable[common.Personality], limit: int = 5
) -> list[Addressed]:
    """The personalities `content` mentions with `@`, in order, each once, at most `limit`."""
    table = sorted(
        ((name.casefold(), p) for p in personalities for name in names_of(p)),
        key=lambda item: len(item[0]),
        reverse=True,
    )
    mapped = fold(content)
    folded = mapped.text
    found: list[Addressed] = []
    seen: set[str] = set()
    index = folded.find("@")
    while index != -1 and len(found) < limit:
        if index == 0 or not (folded[index - 1].isalnum() or folded[index - 1] == "@"):
            for name, personality in table:
                end = index + 1 + len(name)
                if (
                    folded.startswith(name, index + 1)
                    and _boundary(folded, end)
                    and mapped.aligned(end)
                ):
                    key = personality.id or personality.slug
                    if key not in seen:
                        seen.add(key)
                        start, stop = mapped.original(index), mapped.original(end)
                        found.append(Addressed(personality, content[start:stop], start))
                    index = end - 1
                    break
        index = folded.find("@", index + 1)
    return found


def _boundary(text: str, end: int) -> bool:
    return end >= len(text) or not (text[end].isalnum() or text[end] in "_-'")


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
