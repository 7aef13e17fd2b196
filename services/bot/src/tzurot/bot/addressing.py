"""What the bot does with whom a message addresses: the mentions the gateway found
(ResolveMentions, which alone knows the names, aliases and their rules) taken out of the text
the model reads, and whom a reply addresses.

A reply to one of our answers addresses the personality the answer was posted as, only while
the gateway still finds it for the replying user (`reply_addressee`). A forward is no reply:
it shows a message somewhere else, addressing nobody (`is_forward`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import discord

from tzurot.runtime.mention_starts import MentionStarts
from tzurot.v1 import common_pb2 as common

_DISCORD_MENTION = re.compile(r"<@[!&]?\d+>")
"""How Discord writes a mention of a user (`<@id>`, `<@!id>`) or a role (`<@&id>`)."""
_EVERYBODY = ("everyone", "here")
"""Discord's pings of everybody, as it reads them: lowercase only."""
_LONGEST_PING = len("everyone") + 1
"""What `may_mention` reads after an '@': the longest ping and the character after it."""


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


def is_forward(reference: discord.MessageReference) -> bool:
    """Whether a message's reference is a forward's (Discord's "Forward", which shows the
    message in another channel or DM), not a reply's: forwarding an answer addresses nobody."""
    return reference.type is discord.MessageReferenceType.forward


def may_mention(content: str) -> bool:
    """Whether `content` has an '@' that may start a personality's mention, told without the
    names: where the gateway starts reading a name (tzurot.gateway.mentions), a word may
    follow the '@' (not a space, nor the end). Not an '@' of Discord's own mentions (a user
    `<@id>`, `<@!id>`, a role `<@&id>`), of `@everyone` or `@here` as Discord pings them
    (lowercase, a whole word: "@Everyone's Friend" may be a personality), nor one the
    gateway reads no name after: in an e-mail address (ada@example.com), a link
    (https://mastodon.social/@sage, youtube.com/@sage) or Discord's code (`@Sage hi`), by
    the rules the gateway uses (tzurot.runtime.mention_starts, one copy for both). Any
    other '@' counts, right after a word or not ("ねえ@Lilith", "__@Lilith__" in Discord's
    underline). Only for the gateway-away notice: a message is told the gateway is
    restarting only when it may have meant a personality, never for a human pinging
    another."""
    text = _DISCORD_MENTION.sub(" ", content) if "<@" in content else content
    starts = MentionStarts(text)
    start = text.find("@")
    while start != -1:
        rest = text[start + 1 : start + 1 + _LONGEST_PING]
        if (
            rest[:1].strip()
            and not any(_is_word(rest, word) for word in _EVERYBODY)
            and starts.may_start(start)
        ):
            return True
        start = text.find("@", start + 1)
    return False


def _is_word(text: str, word: str) -> bool:
    """Whether `text` begins with `word` exactly (Discord pings only the lowercase words), as
    a whole word."""
    return text.startswith(word) and not (
        len(text) > len(word) and _continues_word(text[len(word)])
    )


def _continues_word(char: str) -> bool:
    """As the gateway tells where a name ends (tzurot.gateway.personalities.continues_word):
    a letter, a combining mark, a digit, '_' or '-'."""
    return char in "_-" or unicodedata.category(char)[0] in "LMN"
