"""A mention in Discord's formatting, and what reading one never depends on: emphasis
closing right after a name ("_waves at @Sage_") ends it unless a personality is named with
it; whether an '@' starts a mention never depends on the rest of the message; the bot's
cheap check (may_mention) never says no where the gateway finds a mention."""

from __future__ import annotations

import random

import pytest

from tzurot.bot.addressing import may_mention
from tzurot.gateway.domain import Personality
from tzurot.gateway.mentions import find_mentions
from tzurot.gateway.speakers import Member, named_in
from tzurot.runtime.mention_starts import MentionStarts, prose

from .test_mention_starts import MENTIONS_NOBODY, MENTIONS_SAGE
from .test_mentions import LILITH, personality

SAGE = personality("sage", "Sage")


def found(content: str, *people: Personality) -> list[tuple[str, str]]:
    everyone = list(people) or [SAGE, LILITH]
    return [(p.slug, text) for p, text, _ in find_mentions(content, everyone, 5)]


def test_emphasis_closing_after_a_name_is_no_part_of_it() -> None:
    assert found("_waves at @Sage_") == [("sage", "@Sage")]
    assert found("__@Sage__ and __@Lilith__") == [("sage", "@Sage"), ("lilith", "@Lilith")]
    assert found("_hi @Sage_. @lil_!") == [("sage", "@Sage"), ("lilith", "@lil")]


def test_an_underscore_before_a_word_still_carries_the_name_on() -> None:
    """ "@Sage_bot" names a "sage_bot", not Sage; nor does "@Sage__init__"."""
    assert found("@Sage_bot hi") == []
    assert found("@Sage__init__") == []
    assert found("@Sage_-") == []


def test_a_personality_named_with_the_underscore_keeps_its_mention() -> None:
    """A display name may end in '_': "@sage_" means it, the longest real match; "@Sage"
    and "_@Sage_" still mean Sage."""
    underscored = personality("sage-underscore", "sage_")
    for people in ([SAGE, underscored], [underscored, SAGE]):
        assert found("hi @sage_", *people) == [("sage-underscore", "@sage_")]
        assert found("hi @sage__", *people) == [("sage-underscore", "@sage_")]
        assert found("@Sage, hi", *people) == [("sage", "@Sage")]
    bot = personality("sage-bot", "sage_bot")
    assert found("_ask @sage_bot_", SAGE, bot) == [("sage-bot", "@sage_bot")]
    assert found("_ask @sage_bot_x", SAGE, bot) == []


def test_a_name_in_emphasis_names_a_group_speaker() -> None:
    sage = Member("s", ("Sage", "sage"), 0.0)
    bot = Member("b", ("sage_bot",), 0.0)
    strange = Member("x", ("_x_",), 0.0)
    assert [m.personality_id for m in named_in("_waves at Sage_", [sage, bot])] == ["s"]
    assert [m.personality_id for m in named_in("__Sage__ hi", [sage, bot])] == ["s"]
    assert [m.personality_id for m in named_in("ask _sage_bot_", [sage, bot])] == ["b"]
    assert [m.personality_id for m in named_in("hi _x_", [strange])] == ["x"]
    assert named_in("sage_bot", [sage]) == []


ELSEWHERE = [
    "https://x.co/a ",
    " see a:b",
    " w/ you",
    " www.",
    " ada@sage.org",
]
"""Unrelated text before or after a message: no '@' of the message changes its reading."""


@pytest.mark.parametrize("content", [*MENTIONS_SAGE, *MENTIONS_NOBODY])
def test_an_at_signs_reading_never_depends_on_the_rest_of_the_message(content: str) -> None:
    at = content.lower().index("@sage")
    alone = MentionStarts(content).may_start(at)
    for more in ELSEWHERE:
        assert MentionStarts(content + "\n" + more).may_start(at) == alone, more
        ahead = more + "\n"
        assert MentionStarts(ahead + content).may_start(len(ahead) + at) == alone, more
        # Where the gateway's speakers read words: the same '@' blanked or kept.
        assert (prose(content + "\n" + more)[at] == " ") == (prose(content)[at] == " "), more


PIECES = [
    "@Sage", "@sage_", "@lil", "_", "__", "*", "~~", "||", "`", "```", "```py  \n", "\n",
    " ", "/", ":", ".", "www.", "https://", "x.com", "main.py", "ada", "@", "\\", "<@1>",
    "@everyone", "@here", "é", "ねえ", "-", "a", "S",
]  # fmt: skip
"""What random messages are made of: formatting, links, code, addresses, pings."""


def test_the_bots_check_never_says_no_where_the_gateway_finds_a_mention() -> None:
    rng = random.Random(262)
    people = [SAGE, LILITH, personality("s", "S"), personality("a", "a")]
    for _ in range(4000):
        content = "".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 12)))
        if find_mentions(content, people, 5):
            assert may_mention(content), repr(content)
