"""Where e-mail addresses, links and Discord's code lie in a message (mention_starts): the
spans the gateway's mentions, its group speakers and the bot's notice all read."""

from __future__ import annotations

from importlib import resources

import pytest

from tzurot.runtime.mention_starts import (
    _FILE_TYPES,
    code_spans,
    email_spans,
    link_spans,
    pings_everybody,
    prose,
)


def spans_text(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[start:end] for start, end in spans]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("`a` ``b`` ```c```", ["`a`", "``b``", "```c```"]),
        ("``a` b``", ["``a` b``"]),  # a single backtick inside double ones
        ("foo ``bar`baz`` boz", ["``bar`baz``"]),
        ("foo `bar\nbaz` boz", ["`bar\nbaz`"]),
        ("`a`` b", []),  # no run of exactly one follows
        ("\\`a` `b`", ["` `"]),  # the escaped one opens nothing
        ("\\\\`a`", ["`a`"]),  # an escaped backslash: the backtick opens
        ("\\a`b`", ["`b`"]),  # a backslash before a letter escapes nothing
        ("``@Sage`", ["``@Sage`"]),  # no "``" follows: one backtick opens, one closes
        ("``` and `@Sage`", ["``` and `"]),
        ("````\n@Sage\n```", ["````\n@Sage\n```"]),  # a block: "```", then any "```"
        ("```\n@Sage````", ["```\n@Sage```"]),
        ("foo```cpp\nbar```bar", ["```cpp\nbar```"]),
        ("```cpp\n```", ["```cpp\n```"]),
        ("``` ``", ["``` ``"]),  # no block: inline, closed by "``"
        ("``` ` ```", ["``` ` ```"]),
        ("```````", ["```````"]),  # a block holding one backtick
        ("```\n\n```", ["```\n\n```"]),  # newlines only: no block, but inline code
        ("```py\n```@Sage```", ["```py\n```@Sage```"]),  # code after the language's line
        ("```py\n``` @Sage", ["```py\n```"]),  # none closes it: "py" is the code
        # The desktop client's rule: a language is [a-z0-9_+-.#], then a newline at once.
        ("```py   \n```@Sage```", ["```py   \n```"]),  # "py   " is the code, no language
        ("```py\t\n```@Sage```", ["```py\t\n```"]),
        ("```c#\n```@Sage```", ["```c#\n```@Sage```"]),
        ("```C++\n```@Sage```", ["```C++\n```@Sage```"]),
        ("```\n\n```@Sage```", ["```\n\n```@Sage```"]),  # newlines, then the code
        ("```py\n\n\n@Sage\n```", ["```py\n\n\n@Sage\n```"]),
        ("`", []),
        ("``", []),
        ("```", []),
        ("``````", []),
        ("no code", []),
        # As Discord's desktop client rendered them (discord.js issue 7373).
        ("``a\\`", ["``a\\`"]),
        ("```a`", ["```a`"]),
        ("`a```b```", ["```b```"]),
        ("`a\\```b```", []),
    ],
)
def test_code_is_paired_as_discord_pairs_it(text: str, code: list[str]) -> None:
    assert spans_text(text, code_spans(text)) == code


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("see https://mastodon.social/@sage, ok", ["https://mastodon.social/@sage,"]),
        ("**youtube.com/@Sage**", ["youtube.com/@Sage"]),
        ("||youtube.com/@Sage||", ["youtube.com/@Sage"]),
        ("“youtube.com/@Sage”", ["youtube.com/@Sage"]),
        ("link:youtube.com/@Sage", ["youtube.com/@Sage"]),
        ("見てyoutube.com/@Sage", ["youtube.com/@Sage"]),
        ("example.com:8080/@Sage", ["example.com:8080/@Sage"]),
        ("localhost:8080/@Sage", ["localhost:8080/@Sage"]),
        ("127.0.0.1/@Sage", ["127.0.0.1/@Sage"]),
        ("mailto:me@Sage", ["mailto:me@Sage"]),
        ("www.tiktok.com/@sage", ["www.tiktok.com/@sage"]),
        ("www.tiktok.com@sage", ["www.tiktok.com@sage"]),  # no '/' nor ':' needed
        ("WWW.tiktok.com@sage and more", ["WWW.tiktok.com@sage"]),
        ("https://youtu.be/abc。ねえ@Sage", ["https://youtu.be/abc"]),
        ("(https://x.com/a)", ["https://x.com/a)"]),
        ("Node.js/https://x.com/@Sage", ["https://x.com/@Sage"]),
        ("Node.js/@Sage", []),
        ("lol.jk/@Sage", ["lol.jk/@Sage"]),  # any two letters: a country's (IANA)
        ("example.com/@Sage", ["example.com/@Sage"]),
        ("example.co.uk/@Sage", ["example.co.uk/@Sage"]),
        ("discord.gg/abc", ["discord.gg/abc"]),
        # A file's name, not a host: its extension is a common file type's.
        ("main.py/@Sage", []),
        ("notes.md/@Sage", []),
        ("src/lib.rs/@Sage", []),
        ("install.sh/@Sage", []),
        ("app.ts/@Sage", []),
        ("notes.txt/@Sage", []),
        ("jquery.min.js/@Sage", []),
        ("Program.fs/@Sage", []),  # no country has these two letters: files
        ("init.el/@Sage", []),
        ("main.jl/@Sage", []),
        ("Form1.vb/@Sage", []),
        ("Main.hx/@Sage", []),
        ("dialog.ui/@Sage", []),
        ("esm.sh/@preact/signals", []),  # the price: such a site needs its scheme or www.
        ("https://esm.sh/@preact/signals", ["https://esm.sh/@preact/signals"]),
        ("www.notes.md/@Sage", ["www.notes.md/@Sage"]),
        ("main.py/https://x.com/@Sage", ["https://x.com/@Sage"]),
        ("Mr.Smith/@Sage", []),
        ("v1.2.3.4.5/@Sage", []),
        ("@Lilith/@Sage", []),
        ("no link here", []),
    ],
)
def test_a_link_starts_at_a_scheme_www_or_a_host_and_ends_with_its_characters(
    text: str, links: list[str]
) -> None:
    assert spans_text(text, link_spans(text)) == links


def test_e_mail_addresses_from_their_local_part_to_their_domain() -> None:
    text = "mail ada@sage.org or first.last+x@mail.example.com; ねえ@Sage a@b.c@d.e"
    assert spans_text(text, email_spans(text)) == [
        "ada@sage.org",
        "first.last+x@mail.example.com",
        "a@b.c",
        "@d.e",  # its local part is the address before: each character read once
    ]


def test_prose_blanks_addresses_links_and_code_keeping_offsets() -> None:
    text = "hi Sage, ada@sage.org https://x.com/@sage `sage` ok"
    assert prose(text) == "hi Sage, " + " " * 12 + " " + " " * 19 + " " + " " * 6 + " ok"
    assert len(prose(text)) == len(text)
    assert prose("plain text") == "plain text"


def _top_level_domains() -> set[str]:
    """IANA's list of top-level domains, as hypothesis (a test dependency) ships it."""
    listing = resources.files("hypothesis.vendor") / "tlds-alpha-by-domain.txt"
    lines = listing.read_text(encoding="utf-8").splitlines()
    return {line.strip().lower() for line in lines if line.strip() and not line.startswith("#")}


def test_the_file_types_that_are_top_level_domains_are_the_ones_documented() -> None:
    """A host ending in a file type's extension is read as a file's name: only these few
    sites need their scheme or "www." (the module docstring names them)."""
    assert _FILE_TYPES & _top_level_domains() == {"py", "md", "sh", "rs", "java", "zip", "mov"}


def test_common_two_letter_extensions_no_country_has_are_file_types() -> None:
    """Any two letters are a country's code, assigned or not, except a file type's: the common
    two-letter extensions of unassigned codes are listed."""
    common = {"cs", "el", "ex", "fs", "go", "gz", "hh", "hs", "hx", "jl", "js", "kt", "ll"}
    common |= {"pp", "rb", "rc", "ts", "ui", "vb", "xz"}
    assert not common & _top_level_domains()
    assert common <= _FILE_TYPES


@pytest.mark.parametrize(
    ("text", "pings"),
    [
        ("@everyone", True),
        ("@here!", True),
        ("@everyone's friend", True),
        ("_@everyone_", True),  # italics: the marker is no part of the word
        ("__@here__ look", True),
        ("__@here__look", True),  # underline closes before a letter too
        ("@heres", False),
        ("@here-ish", False),
        ("@Everyone", False),
    ],
)
def test_discords_ping_of_everybody_is_a_lowercase_word_its_markers_end(
    text: str, pings: bool
) -> None:
    assert pings_everybody(text, text.index("@")) == pings
