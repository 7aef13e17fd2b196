"""Folded text with its positions in the original (tzurot.runtime.folding)."""

from tzurot.runtime.folding import fold


def test_a_text_that_keeps_its_length_maps_to_itself() -> None:
    folded = fold("Hello @Lilith")
    assert folded.text == "hello @lilith"
    assert [folded.original(i) for i in (0, 6, 13)] == [0, 6, 13]
    assert all(folded.aligned(i) for i in range(14))


def test_lengthened_characters_map_back_to_where_they_were() -> None:
    folded = fold("aßb")  # "ss" in the folded text
    assert folded.text == "assb"
    assert [folded.original(i) for i in range(5)] == [0, 1, 1, 2, 3]
    assert [folded.aligned(i) for i in range(5)] == [True, True, False, True, True]
    lowered = fold("xİy", str.lower)
    assert lowered.text == "xi̇y"
    assert lowered.original(lowered.text.index("y")) == 2
    assert not lowered.aligned(2)  # between "i" and its combining dot
