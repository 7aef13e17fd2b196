"""@mentions: names before global aliases, then the longest match; word boundaries; one result
per personality; limits."""

from dataclasses import replace
from datetime import timedelta

from tzurot.gateway.mentions import find_mentions
from tzurot.gateway.personalities import edges_problem, mention_key, word_prefixes

from .personality_support import NOW, personality

THE = personality("the", "The")
ORACLE = personality("oracle", "The Oracle")
LILITH = personality("lilith", "Lilith", "lil")
ALL = [THE, ORACLE, LILITH]


def found(content: str, limit: int = 5) -> list[tuple[str, str, int]]:
    return [(p.slug, text, offset) for p, text, offset in find_mentions(content, ALL, limit)]


def test_the_longest_name_wins() -> None:
    assert found("ask @the  Oracle now") == [("oracle", "@the  Oracle", 4)]
    assert found("@the other one") == [("the", "@the", 0)]


def test_names_end_at_a_word_boundary() -> None:
    assert found("@lilithx and @lil, @lilith") == [("lilith", "@lil", 13)]
    assert found("mail me at x@lil-y") == []


def test_each_personality_once_in_order_of_appearance_up_to_the_limit() -> None:
    assert found("@Lil @oracle @lilith @the") == [
        ("lilith", "@Lil", 0),
        ("oracle", "@oracle", 5),
        ("the", "@the", 21),
    ]
    assert found("@Lil @oracle @the", limit=2) == [("lilith", "@Lil", 0), ("oracle", "@oracle", 5)]


def test_no_mentions() -> None:
    assert found("hello lilith, no at sign") == []
    assert found("@") == []


def test_a_letter_that_lowers_to_two_leaves_the_mention_where_it_was_written() -> None:
    """ "İ".lower() is two characters: the mention's text and offset are the original's."""
    content = "İstanbul'dan selam @Lilith nasılsın"  # noqa: RUF001 - Turkish (a dotless i)
    assert found(content) == [("lilith", "@Lilith", content.index("@"))]
    istanbul = personality("istanbul", "İstanbul")
    mentioned = find_mentions("hi @İstanbul!", [istanbul], 5)
    assert [(text, offset) for _p, text, offset in mentioned] == [("@İstanbul", 3)]
    # "i" is half of what "İ" lowers to: not a mention of "i".
    assert find_mentions("@İ hi", [personality("i", "i")], 5) == []


def test_a_name_wins_over_another_personalitys_alias_of_the_same_text() -> None:
    """Rows from before the gateway refused such names: `@zed` is Zed's own name and an
    alias of Abel (sorted first by slug); the name wins, in whatever order they come."""
    abel = personality("abel", "Abel", "zed", "nova")
    zed = personality("zed", "Zed")
    nova = personality("nova-star", "Nova")  # a display name against Abel's alias
    for order in ([abel, zed, nova], [nova, zed, abel]):
        mentioned = find_mentions("@zed and @Nova", order, 5)
        assert [(p.slug, text) for p, text, _ in mentioned] == [
            ("zed", "@zed"),
            ("nova-star", "@Nova"),
        ]


def test_equal_names_go_to_the_oldest_personality_whatever_the_order() -> None:
    older = replace(personality("b-twin", "Twin"), created_at=NOW - timedelta(days=1))
    newer = personality("a-twin", "Twin")
    for order in ([newer, older], [older, newer]):
        assert [p.slug for p, _, _ in find_mentions("@twin", order, 5)] == ["b-twin"]


SAGE = personality("sage", "Sage")
EVIL = personality("evil", "Evil", "sage!", "sage,", "sage's", "sage please")


def test_a_global_alias_extending_a_name_never_takes_its_mentions() -> None:
    """Review s4 M1: Evil's aliases (from before the gateway refused them) extend Sage's name
    with punctuation or a word; the longest match gave Evil every such mention of Sage (and
    the speaker's key paid for Evil's answer)."""
    texts = ["thanks @Sage!", "hi @Sage, how", "@sage's idea", "@Sage please help", "hi @Sage how"]
    for order in ([EVIL, SAGE], [SAGE, EVIL]):
        for text in texts:
            assert [p.slug for p, _, _ in find_mentions(text, order, 5)] == ["sage"], text


def test_a_name_wins_over_a_longer_alias_the_longest_alias_among_aliases() -> None:
    delphi = personality("delphi", "Delphi", "the oracle")
    bit = personality("bit", "Bit", "lil bit")
    for order in ([delphi, THE], [THE, delphi]):
        assert [(p.slug, t) for p, t, _ in find_mentions("@the oracle hi", order, 5)] == [
            ("the", "@the")
        ]
    # No name matches: the longest alias wins (Lilith's "lil" is the shorter one).
    for order in ([LILITH, bit], [bit, LILITH]):
        assert [p.slug for p, _, _ in find_mentions("@lil bit hi", order, 5)] == ["bit"]
        assert [p.slug for p, _, _ in find_mentions("@lil, bit", order, 5)] == ["lilith"]


def test_the_speakers_own_alias_counts_as_a_name() -> None:
    """The speaker's own alias "sage" (Lilith, for them) is not taken by Evil's longer global
    alias "sage please" either."""
    mentioned = find_mentions("@sage please", [EVIL], 5, [("sage", LILITH)])
    assert [(p.slug, text) for p, text, _ in mentioned] == [("lilith", "@sage")]


def test_a_combining_mark_carries_on_the_word() -> None:
    """A Devanagari vowel sign is a mark, not a letter: "@सीता" is no mention of "सीत"."""
    sit, sita = personality("char-1", "सीत"), personality("char-2", "सीता")
    assert find_mentions("@सीता नमस्ते", [sit], 5) == []
    assert [p.slug for p, _, _ in find_mentions("@सीता नमस्ते", [sit, sita], 5)] == ["char-2"]


def test_what_a_name_begins_with_and_its_edges() -> None:
    """The store's rules read names as `find_mentions` does (personalities.py)."""
    assert word_prefixes("sage please") == ["sage"]
    assert word_prefixes("sage's idea") == ["sage", "sage's"]
    assert word_prefixes("sage, hi") == ["sage", "sage,"]
    assert word_prefixes("sagebrush") == word_prefixes("sage-bot") == word_prefixes("सीता") == []
    for fine in ("Dr. Who", "D'Artagnan", "सीता", "R2-D2", "7 seas", "élan"):
        assert edges_problem(fine) is None, fine
    for refused in ("sage!", "sage,", "!sage", "sage 🌿", "(sage)", "sage_", "sage-"):
        assert edges_problem(refused) is not None, refused


def test_a_name_is_mentioned_by_its_key_its_edges_trimmed() -> None:
    """A display name may begin or end with anything (review s5 M2): it is mentioned by its
    key, the name with what cannot begin or end a word trimmed from its edges."""
    keys = {
        "Sage 🌙": "sage",
        "✨Luna✨": "luna",
        "Sage (beta)": "sage (beta",
        "Mr. T.": "mr. t",
        "Dr. Who?": "dr. who",
        "  सीता ": "सीता",
        "🌙": "",
        "!!!": "",
    }
    assert {name: mention_key(name) for name in keys} == keys
    people = [
        personality("luna", "✨Luna✨"),
        personality("who", "Dr. Who?"),
        personality("beta", "Sage (beta)"),
        personality("mrt", "Mr. T."),
    ]
    text = "@Luna hi, @dr. who? and @Sage (beta) with @Mr. T."
    assert [(p.slug, t) for p, t, _ in find_mentions(text, people, 5)] == [
        ("luna", "@Luna"),
        ("who", "@dr. who?"),  # the name as written, the longer match
        ("beta", "@Sage (beta)"),
        ("mrt", "@Mr. T."),
    ]
    assert [p.slug for p, _, _ in find_mentions("@✨Luna✨", people, 5)] == ["luna"]
    assert [t for _, t, _ in find_mentions("@Dr. Who, hi", people, 5)] == ["@Dr. Who"]


def test_a_name_as_written_wins_over_another_names_key() -> None:
    """ "Sage 🌙" is mentioned as written ("@Sage 🌙") and by its key ("@Sage"); an older
    "Sage" of someone else keeps "@Sage", and "@✨Luna✨" written as Discord shows it works."""
    moon = replace(personality("sage-moon", "Sage 🌙"), created_at=NOW - timedelta(days=1))
    sage = personality("sage-two", "Sage")
    luna = personality("luna-star", "✨Luna✨")
    people = [moon, sage, luna]
    text = "@Sage 🌙 hi, @Sage there, @✨Luna✨ too"
    assert [(p.slug, t) for p, t, _ in find_mentions(text, people, 5)] == [
        ("sage-moon", "@Sage 🌙"),
        ("sage-two", "@Sage"),
        ("luna-star", "@✨Luna✨"),
    ]
