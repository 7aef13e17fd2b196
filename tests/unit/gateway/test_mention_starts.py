"""An '@' in an e-mail address, a link or Discord's code mentions nobody (mention_starts.py);
every other '@' a name follows still does, after a word too."""

from __future__ import annotations

import pytest

from tzurot.gateway.mention_starts import code_spans
from tzurot.gateway.mentions import find_mentions

from .test_mentions import LILITH, personality

SAGE = personality("sage", "Sage")
ALL = [SAGE, LILITH]


def found(content: str) -> list[tuple[str, str, int]]:
    return [(p.slug, text, offset) for p, text, offset in find_mentions(content, ALL, 5)]


@pytest.mark.parametrize(
    "content",
    [
        "@Sage",
        "hi @Sage!",
        "(@Sage)",
        "ねえ@Sage",  # no ASCII local part: no e-mail address
        "@Sage.",
        "@Sage. How are you?",
        "ask@sage about it",  # no dotted domain: no e-mail address
        "__@Sage please__",  # Discord's underline
        "see https://example.com @Sage",  # after a link, not in it
        "`code` then @Sage",
        "a lone ` and @Sage",
        "\\`@Sage`",  # an escaped backtick opens no code
        "> @Sage said so",
    ],
)
def test_a_mention_where_a_name_follows_an_at_sign(content: str) -> None:
    assert found(content) == [("sage", content[content.index("@") :][:5], content.index("@"))]


@pytest.mark.parametrize(
    "content",
    [
        "ada@sage.org",
        "mail me at ada@sage.org, thanks",
        "first.last+tag@sage.example.org",
        "https://mastodon.social/@sage",
        "follow https://mastodon.social/@Sage!",
        "<https://www.youtube.com/@Sage>",
        "(https://medium.com/@sage/a-post)",
        "https://x.example/?user=@sage",
        "youtube.com/@sage",
        "see (www.tiktok.com/@sage/video/1)",
        "`@Sage hi` is how you talk to her",
        "``@Sage``",
        "```\n@Sage hi\n```",
        "```py\n@sage.route('/')\ndef index(): ...\n```",
    ],
)
def test_no_mention_in_an_e_mail_address_a_link_or_code(content: str) -> None:
    assert found(content) == []


def test_the_mentions_around_them_are_found_where_they_are() -> None:
    content = "ada@sage.org, https://mastodon.social/@sage, `@Sage` and then @Sage, @Lilith"
    assert found(content) == [
        ("sage", "@Sage", content.index("then @") + 5),
        ("lilith", "@Lilith", content.index("@Lilith")),
    ]
    # Both, the second after a '/' that begins no link.
    assert found("@Lilith/@Sage what do you think?") == [
        ("lilith", "@Lilith", 0),
        ("sage", "@Sage", 8),
    ]


def test_code_spans_pair_runs_of_as_many_backticks() -> None:
    assert code_spans("`a` ``b`` ```c```") == [(0, 3), (4, 9), (10, 17)]
    assert code_spans("``a` b``") == [(0, 8)]  # a shorter run inside is code
    assert code_spans("`a`` b") == []  # no run of one after the first: literal
    assert code_spans("\\`a` `b`") == [(3, 6)]  # the escaped one opens nothing
    assert code_spans("no code") == []


def test_many_backticks_stay_linear() -> None:
    """A message of backtick runs of every length, none closed: each run looked at once."""
    content = " ".join("`" * n for n in range(1, 90)) + " @Sage"
    assert found(content) == [("sage", "@Sage", content.index("@"))]
