"""An '@' in an e-mail address, a link or Discord's code mentions nobody
(tzurot.runtime.mention_starts); every other '@' a name follows still does, after a word too.
The gateway (find_mentions) and the bot (may_mention, its gateway-away notice) read each
message of the table alike."""

from __future__ import annotations

import pytest

from tzurot.bot.addressing import may_mention
from tzurot.gateway.mentions import find_mentions

from .personality_support import personality
from .test_mentions import LILITH

SAGE = personality("sage", "Sage")
ALL = [SAGE, LILITH]

MENTIONS_SAGE = [
    "@Sage",
    "hi @Sage!",
    "(@Sage)",
    "ねえ@Sage",  # no ASCII local part: no e-mail address
    "@Sage.",
    "@Sage. How are you?",
    "ask@sage about it",  # no dotted domain: no e-mail address
    "josé@sage.org",  # no ASCII local part either
    "__@Sage please__",  # Discord's underline
    "**@Sage**",
    "||@Sage||",
    # Discord's formatting closing right after the name: no personality is named "Sage_".
    "_waves at @Sage_",
    "*@Sage*",
    "__@Sage__",
    "___@Sage___",
    "~~@Sage~~",
    "_@Sage_, hi",
    "**_@Sage_**",
    "> @Sage said so",
    "w/@Sage",
    "email me@Sage",
    "see https://example.com @Sage",  # after a link, not in it
    "see https://example.com\n@Sage",
    "re:https://x.com/a and @Sage",
    "https://x.com/a?b=c d/@Sage",
    "@Sage\u00a0https://x.com/@Lilith",  # a no-break space ends the link too
    "[@Sage](https://x.com)",  # a masked link's text
    # A link ends at a character no URL holds: CJK punctuation and text, smart quotes.
    "https://youtu.be/abc。ねえ@Sage",
    "見て→https://youtu.be/abc。ねえ@Sage、どう思う？",  # noqa: RUF001 (full-width on purpose)
    "youtube.com/見て、ねえ@Sage",
    "“https://youtu.be/abc”@Sage",
    # Not a link: a file's name, a capital, no dot, no '/' after the host.
    "Node.js/@Sage thoughts?",
    "main.py/@Sage",
    "notes.md/@Sage",
    "src/lib.rs/@Sage",
    "run.sh/@Sage",
    "index.html/@Sage",
    "notes.txt/@Sage",
    "Program.fs/@Sage",  # two-letter extensions no country has
    "init.el/@Sage",
    "main.jl/@Sage",
    "Form1.vb/@Sage",
    "Mr.Smith/@Sage",
    "X.COM/@Sage",
    "Sage.js/@Sage",
    "http:@Sage",
    # Code as Discord's desktop client pairs it (third-party emulations).
    "`code` then @Sage",
    "a lone ` and @Sage",
    "don`t tell @Sage",
    "\\`@Sage`",  # an escaped backtick opens no code
    "``` and `@Sage`",  # "``` and `" is the code
    "``a` @Sage",  # "`a`" is
    "```hi\n@Sage",  # a block never closed
    "```py\nprint(1)\n```\n@Sage hi",
    "```py   \n```@Sage```",  # no language after all: "py   " is the code
]

MENTIONS_NOBODY = [
    "ada@sage.org",
    "mail me at ada@sage.org, thanks",
    "first.last+tag@sage.example.org",
    "first_@sage.org",
    "müller@sage.de",
    "メールはada@sage.orgです",  # Japanese right after the address
    "hmm...@Sage.What do you think",  # reads as an address: one (documented)
    "ok.@Sage.thoughts?",
    "https://mastodon.social/@sage",
    "follow https://mastodon.social/@Sage!",
    "<https://www.youtube.com/@Sage>",
    "(https://medium.com/@sage/a-post)",
    "https://x.example/?user=@sage",
    "https://example.com,@Sage what?",  # ',' is a URL's character: still the link
    "[profile](https://mastodon.social/@Sage)",
    "ftp://x/@Sage",
    "mailto:ada@sage.org",
    "mailto:me@Sage",
    "youtube.com/@sage",
    "x.com/@Sage",
    "t.co/@Sage",
    "example.com/@Sage",
    "lol.jk/@Sage",  # any two letters are a country's (IANA)
    "www.tiktok.com@Sage",
    "https://esm.sh/@Sage",  # a file-like host, written with its scheme
    "see (www.tiktok.com/@sage/video/1)",
    "<youtube.com/@Sage>",
    "**youtube.com/@Sage**",
    "||youtube.com/@Sage||",
    "_youtube.com/@Sage_",
    "“youtube.com/@Sage”",
    "link:youtube.com/@Sage",
    "見てyoutube.com/@Sage",
    "example.com:8080/@Sage",
    "localhost:8080/@Sage",
    "127.0.0.1/@Sage",
    "Node.js/https://x.com/@Sage",
    "`@Sage hi` is how you talk to her",
    "``@Sage``",
    "```\n@Sage hi\n```",
    "```py\n@sage.route('/')\ndef index(): ...\n```",
    "`multi\nline @Sage`",
    "```@Sage```",
    "``@Sage`",  # code from the second backtick
    "\\\\`@Sage`",  # an escaped backslash, then code
    "````\n@Sage\n```",  # a block from the first three backticks
    "```\n@Sage````",  # closed by the first three of four
    "```c#\n```@Sage```",  # "c#" names a language: the code begins at "```@Sage"
    "```\n\n```@Sage```",
]


def found(content: str) -> list[tuple[str, str, int]]:
    return [(p.slug, text, offset) for p, text, offset in find_mentions(content, ALL, 5)]


@pytest.mark.parametrize("content", MENTIONS_SAGE)
def test_a_mention_where_a_name_follows_an_at_sign(content: str) -> None:
    at = content.lower().index("@sage")
    assert found(content)[:1] == [("sage", content[at : at + 5], at)]
    assert may_mention(content)  # the bot reads it alike


@pytest.mark.parametrize("content", MENTIONS_NOBODY)
def test_no_mention_in_an_e_mail_address_a_link_or_code(content: str) -> None:
    assert found(content) == []
    assert not may_mention(content)  # the bot reads it alike


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
    # Folded text ("İ" lowers to two characters) keeps the offsets as written.
    content = "İstanbul: https://mastodon.social/@sage, @Sage!"
    assert found(content) == [("sage", "@Sage", content.rindex("@"))]
