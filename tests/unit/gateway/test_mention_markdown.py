"""A mention in Discord's formatting, and what reading one never depends on: emphasis
closing right after a name ("_waves at @Sage_") ends it where a '_' run before it opened that
emphasis (the longest name written still wins), and a '_' nothing opened is part of what was
written ("@sage_"); Discord's ping of everybody mentions nobody; whether an '@' starts a
mention never depends on the rest of the message; the bot's cheap check (may_mention) never
says no where the gateway finds a mention."""

from __future__ import annotations

import random

import pytest

from tzurot.bot.addressing import may_mention
from tzurot.gateway.domain import Personality
from tzurot.gateway.mentions import find_mentions
from tzurot.gateway.speakers import Member, named_in
from tzurot.runtime.mention_starts import MentionStarts, prose

from .personality_support import personality
from .test_mention_starts import MENTIONS_NOBODY, MENTIONS_SAGE
from .test_mentions import LILITH

SAGE = personality("sage", "Sage")


def found(content: str, *people: Personality) -> list[tuple[str, str]]:
    everyone = list(people) or [SAGE, LILITH]
    return [(p.slug, text) for p, text, _ in find_mentions(content, everyone, 5)]


def test_emphasis_closing_after_a_name_is_no_part_of_it() -> None:
    assert found("_waves at @Sage_") == [("sage", "@Sage")]
    assert found("__@Sage__ and __@Lilith__") == [("sage", "@Sage"), ("lilith", "@Lilith")]
    assert found("_hi @Sage_. @lil_!") == [("sage", "@Sage")]  # nothing opened "@lil_"


@pytest.mark.parametrize(
    "content",
    [
        "follow @sage_ on insta",
        "my handle is @sage__",
        "ping @Sage_ lol",
        "__init__@Sage__",  # "__init__" is underlined: nothing is open after it
        "`_x` and @Sage_",  # code opens nothing
        "https://x.com/a_b @Sage_",  # nor does a link
        "\\_waves at @Sage_",  # an escaped '_' opens nothing
        "_a_b @Sage__",  # italics open at "_b", and two '_' close none
    ],
)
def test_underscores_nothing_opened_are_part_of_what_was_written(content: str) -> None:
    """Discord shows "@Sage_" as written where no '_' run before it opens its emphasis: a
    handle ("sage_"), not Sage."""
    assert found(content) == []


@pytest.mark.parametrize(
    "content",
    [
        "__@Sage__hi",  # underline closes before anything but '_'
        "__@Sage__です",
        "_@Sage_です",  # italics close before anything but an ASCII letter or digit
        "_@Sage_é",
        "snake_case and @Sage_",  # Discord's italics: "case and @Sage"
        "\\\\_@Sage_",  # an escaped backslash, then italics
        "_a __b__ @Sage_",
        "__a _b_ @Sage__",
    ],
)
def test_emphasis_closes_as_discord_closes_it(content: str) -> None:
    assert found(content) == [("sage", "@Sage")]


WREN = personality("sage-wren", "Sage Wren")


def test_inside_emphasis_the_longest_name_written_wins() -> None:
    """The same ranking as anywhere else: names before global aliases, then the longest."""
    other = personality("other", "Other", "sage")  # a global alias "sage"
    assert found("_waves at @Sage Wren_", WREN, other) == [("sage-wren", "@Sage Wren")]
    assert found("_waves at @Sage Wren_", WREN, SAGE) == [("sage-wren", "@Sage Wren")]
    assert found("__@Sage Wren__", SAGE, WREN) == [("sage-wren", "@Sage Wren")]
    the, oracle = personality("the", "The"), personality("oracle", "The Oracle")
    assert found("_asks @the oracle_", the, oracle) == [("oracle", "@the oracle")]
    moth, luna = personality("moth", "Luna Moth"), personality("luna", "Luna")
    assert found("_hugs @Luna Moth_", moth, luna) == [("moth", "@Luna Moth")]
    assert found("__@Luna Moth__", moth, luna) == [("moth", "@Luna Moth")]


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
        assert found("@Sage, hi", *people) == [("sage", "@Sage")]
        # "sage__" is neither: nothing opened emphasis for its '_'s to close.
        assert found("hi @sage__", *people) == []
        # Underlined "@sage": the closing "__" mirrors the opening one, no name takes half.
        assert found("__@sage__", *people) == [("sage", "@sage")]
        # Underlined "@sage_": the underline closes at the last two '_'.
        assert found("__@sage___", *people) == [("sage-underscore", "@sage_")]
    bot = personality("sage-bot", "sage_bot")
    assert found("__ask @sage_bot__", SAGE, bot) == [("sage-bot", "@sage_bot")]
    assert found("_ask @sage_bot_x", SAGE, bot) == []


OWL = personality("night-owl", "night_owl")


@pytest.mark.parametrize(
    "content",
    ["follow @night_owl_ on insta", "@night_owl_ hi", "_ask @sage_bot_", "__@night_owl___"],
)
def test_emphasis_the_names_own_underscore_opened_closes_no_name(content: str) -> None:
    """The '_' in "night_owl" opens italics that the '_' after it closes: Discord shows
    "@night" and italic "owl", a handle, not the name. Only emphasis opened before the '@'
    ends a name where it closes."""
    bot = personality("sage-bot", "sage_bot")
    assert found(content, SAGE, OWL, bot) == []


def test_emphasis_opened_before_the_at_still_ends_a_name_holding_an_underscore() -> None:
    assert found("__@night_owl__ hi", SAGE, OWL) == [("night-owl", "@night_owl")]
    assert found("__hi @night_owl__!", SAGE, OWL) == [("night-owl", "@night_owl")]


def test_a_personal_alias_holding_an_underscore_reads_emphasis_alike() -> None:
    lilith = [("my_sage", LILITH)]
    assert find_mentions("dm @my_sage_ on x", [SAGE, LILITH], 5, lilith) == []
    assert [p.slug for p, _, _ in find_mentions("__@my_sage__", [SAGE], 5, lilith)] == ["lilith"]


def test_a_name_in_emphasis_names_a_group_speaker() -> None:
    sage = Member("s", ("Sage", "sage"), 0.0)
    bot = Member("b", ("sage_bot",), 0.0)
    strange = Member("x", ("_x_",), 0.0)
    assert [m.personality_id for m in named_in("_waves at Sage_", [sage, bot])] == ["s"]
    assert [m.personality_id for m in named_in("__Sage__ hi", [sage, bot])] == ["s"]
    assert [m.personality_id for m in named_in("ask __sage_bot__", [sage, bot])] == ["b"]
    # Discord shows "ask _sage" and "bot" in italics: the '_' before "bot" opens them.
    assert named_in("ask _sage_bot_", [sage, bot]) == []
    assert [m.personality_id for m in named_in("hi _x_", [strange])] == ["x"]
    assert named_in("sage_bot", [sage]) == []


@pytest.mark.parametrize(
    "text",
    ["dm sage_ on twitter", "self._sage = 1", "my handle is sage__", "__init__ sage__"],
)
def test_underscores_nothing_pairs_with_name_no_group_speaker(text: str) -> None:
    assert named_in(text, [Member("s", ("Sage",), 0.0)]) == []


@pytest.mark.parametrize(
    "text",
    ["ask sage_bot_ pls", "follow luna_sage_ on insta", "x = obj.get_sage_()", "the_sage_ said hi"],
)
def test_italics_opened_inside_a_word_join_it_as_discord_shows_it(text: str) -> None:
    """ "sage_bot_" is "sage" and italic "bot": Discord shows one word, "sagebot", which
    names neither Sage nor sage_bot; nor do "luna_sage_" and "the_sage_" name anyone."""
    members = [Member("s", ("Sage", "sage"), 0.0), Member("b", ("sage_bot",), 0.0)]
    assert named_in(text, [*members, Member("l", ("Luna",), 0.0)]) == []


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
    "@everyone", "@here", "é", "ねえ", "-", "a", "S", "'s friend", " comes", "Everyone",
]  # fmt: skip
"""What random messages are made of: formatting, links, code, addresses, pings."""

PINGED = [
    personality("friend", "everyone's friend"),
    personality("trouble", "Here Comes Trouble"),
    personality("everyone", "Everyone"),
    personality("here", "Here"),
]
"""Personalities named as Discord's pings of everybody begin."""


def test_discords_ping_of_everybody_mentions_no_personality() -> None:
    """Discord pings everybody at a lowercase "@everyone" or "@here" (a whole word), so no
    name is read after one, as the bot's check reads it; capitalized, it is a mention."""
    pings = ["@everyone's friend hi", "@here comes trouble", "@everyone", "(@here)"]
    # In italics or underlined, still a ping: the markers are no part of the word.
    for content in [*pings, "_@everyone_", "__@here__ look", "___@everyone___", "@here_"]:
        assert found(content, *PINGED) == [], content
        assert not may_mention(content), content
    assert found("@Everyone's Friend hi", *PINGED) == [("friend", "@Everyone's Friend")]
    assert found("@Here Comes Trouble!", *PINGED) == [("trouble", "@Here Comes Trouble")]
    assert found("@Everyone", *PINGED) == [("everyone", "@Everyone")]
    assert found("@heres", *PINGED) == []  # no personality is named "heres"
    assert may_mention("@heres")


def test_the_bots_check_never_says_no_where_the_gateway_finds_a_mention() -> None:
    rng = random.Random(262)
    people = [SAGE, LILITH, personality("s", "S"), personality("a", "a"), *PINGED]
    for _ in range(4000):
        content = "".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 12)))
        if find_mentions(content, people, 5):
            assert may_mention(content), repr(content)
