"""Speaker selection in group channels: names, talkativeness, anti-repetition, caps, seeds."""

from __future__ import annotations

from collections import Counter

import pytest

from tzurot.gateway.speakers import Member, choose_speakers, named_in, seeded_rng

ALASTOR = Member("a", ("Alastor", "alastor", "the radio demon"), 0.0)
LILITH = Member("l", ("Lilith", "lilith"), 0.0)
SAGE = Member("s", ("Sage Wren", "sage"), 0.0)
GROUP = (ALASTOR, LILITH, SAGE)


def ids(members: list[Member]) -> list[str]:
    return [m.personality_id for m in members]


def test_a_name_in_plain_text_picks_that_speaker() -> None:
    picked = choose_speakers(GROUP, "hey alastor, how are you?", rng=seeded_rng(1), max_speakers=3)
    assert ids(picked) == ["a"]


def test_names_speak_in_the_order_they_appear_whole_or_by_first_name() -> None:
    text = "Sage, then LILITH, then the radio demon"
    assert ids(named_in(text, GROUP)) == ["s", "l", "a"]
    assert ids(choose_speakers(GROUP, text, rng=seeded_rng(1), max_speakers=2)) == ["s", "l"]


def test_a_word_of_an_alias_alone_does_not_name_anyone() -> None:
    assert named_in("the demon of the radio", GROUP) == []
    assert named_in("Wren alone", GROUP) == []


def test_a_name_inside_another_word_does_not_count() -> None:
    assert named_in("sagebrush and lilithian", GROUP) == []


@pytest.mark.parametrize(
    "text",
    [
        "mail ada@sage.org",
        "write to lilith@example.com",
        "youtube.com/@sage",
        "see https://mastodon.social/@Sage/123",
        "**youtube.com/@sage**",
        "`sage` is a variable",
        "```py\nsage = Alastor()\n```",
    ],
)
def test_a_name_in_an_e_mail_address_a_link_or_code_names_nobody(text: str) -> None:
    """As an '@' there mentions nobody (tzurot.runtime.mention_starts)."""
    assert named_in(text, GROUP) == []


def test_the_same_name_outside_them_still_names() -> None:
    assert ids(named_in("Sage, mail ada@sage.org", GROUP)) == ["s"]
    assert ids(named_in("what is youtube.com/@lilith, @Sage?", GROUP)) == ["s"]
    assert ids(named_in("ねえ@Sage", GROUP)) == ["s"]
    assert ids(named_in("Node.js/@Sage thoughts?", GROUP)) == ["s"]  # no link
    assert ids(named_in("`code` and lilith", GROUP)) == ["l"]


def test_talkativeness_one_always_speaks_and_zero_never_does() -> None:
    chatty = Member("c", ("Chatty",), 1.0)
    shy = Member("q", ("Quiet",), 0.0)
    for seed in range(50):
        picked = choose_speakers([chatty, shy], "hello", rng=seeded_rng(seed), max_speakers=2)
        assert ids(picked) == ["c"]


def test_talkativeness_is_a_probability() -> None:
    half = Member("h", ("Half",), 0.5)
    other = Member("o", ("Other",), 0.0)
    spoke = Counter(
        "h"
        in ids(choose_speakers([half, other], "x", rng=seeded_rng(s), max_speakers=2, minimum=0))
        for s in range(2000)
    )
    assert 900 < spoke[True] < 1100


def test_at_least_one_speaks_even_when_nobody_rolled() -> None:
    for seed in range(30):
        assert len(choose_speakers(GROUP, "hello", rng=seeded_rng(seed), max_speakers=3)) == 1


def test_a_chain_reply_may_have_nobody() -> None:
    assert choose_speakers(GROUP, "hello", rng=seeded_rng(1), max_speakers=3, minimum=0) == []


def test_at_most_max_speakers_each_once() -> None:
    loud = [Member(str(i), (f"P{i}",), 1.0) for i in range(5)]
    picked = choose_speakers(loud, "P1 P1 P2", rng=seeded_rng(3), max_speakers=3)
    assert len(picked) == 3
    assert len(set(ids(picked))) == 3
    assert ids(picked)[:2] == ["1", "2"]


def test_the_last_speaker_is_deprioritised() -> None:
    loud = [Member("x", ("Xan",), 1.0), Member("y", ("Yul",), 1.0)]
    for seed in range(20):
        picked = choose_speakers(
            loud, "Xan said so", rng=seeded_rng(seed), max_speakers=2, last_speaker_id="x"
        )
        assert ids(picked) == ["y"]


def test_the_last_speaker_still_speaks_when_alone() -> None:
    only = [Member("x", ("Xan",), 1.0)]
    assert ids(
        choose_speakers(only, "hi", rng=seeded_rng(1), max_speakers=1, last_speaker_id="x")
    ) == ["x"]


def test_the_same_seed_gives_the_same_order_and_seeds_differ() -> None:
    loud = [Member(str(i), (f"P{i}",), 0.6) for i in range(6)]
    orders = {
        tuple(ids(choose_speakers(loud, "hi", rng=seeded_rng("seed", n), max_speakers=6)))
        for n in range(20)
    }
    assert len(orders) > 5
    first = ids(choose_speakers(loud, "hi", rng=seeded_rng("seed", 7), max_speakers=6))
    again = ids(choose_speakers(loud, "hi", rng=seeded_rng("seed", 7), max_speakers=6))
    assert first == again


def test_a_human_naming_the_last_speaker_still_gets_it() -> None:
    loud = [Member("x", ("Xan",), 0.0), Member("y", ("Yul",), 0.0)]
    picked = choose_speakers(
        loud, "Xan?", rng=seeded_rng(1), max_speakers=2, last_speaker_id="x", from_human=True
    )
    assert ids(picked) == ["x"]
