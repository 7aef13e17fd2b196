"""Cuts to a limit in code points fall between characters as a reader sees them, never inside
one (a letter and its accent, an emoji and its skin tone, a flag, a ZWJ family)."""

from __future__ import annotations

import pytest

from tzurot.runtime.graphemes import ELLIPSIS, clipped, grapheme_prefix, trimmed_prefix

THUMB = "👍🏽"
WHOLE = [
    THUMB,  # a thumb and its skin tone
    "e\u0301",  # a letter and its accent
    "🇫🇷",  # a flag's two letters
    "👨\u200d👩\u200d👧",  # a family, joined (ZWJ)
    "✌\ufe0f",  # an emoji and its presentation selector
]


@pytest.mark.parametrize("character", WHOLE)
def test_the_character_the_limit_reaches_into_is_left_out_whole(character: str) -> None:
    text = "a" * 9 + character + "b"
    assert grapheme_prefix(text, 10) == "a" * 9
    assert grapheme_prefix(text, 9 + len(character)) == "a" * 9 + character


def test_a_text_that_fits_is_itself_and_one_whose_first_character_does_not_is_empty() -> None:
    assert grapheme_prefix("abc", 3) == "abc"
    assert grapheme_prefix("", 0) == ""
    assert grapheme_prefix("👨\u200d👩\u200d👧 and more", 4) == ""


@pytest.mark.parametrize("character", WHOLE)
def test_clipped_marks_the_cut_with_an_ellipsis_within_the_limit(character: str) -> None:
    text = "a" * 98 + character + "b"
    cut = clipped(text, 100)
    assert cut == "a" * 98 + ELLIPSIS
    assert len(cut) <= 100


def test_clipped_leaves_a_text_that_fits_as_it_is() -> None:
    assert clipped("a" * 100, 100) == "a" * 100
    assert clipped("a" * 101, 100) == "a" * 99 + ELLIPSIS


@pytest.mark.parametrize("limit", [0, -1, -100])
def test_clipped_never_goes_over_a_limit_with_no_room_for_the_ellipsis(limit: int) -> None:
    assert clipped("abc", limit) == ""


def test_clipped_to_one_is_the_ellipsis_alone() -> None:
    assert clipped("abc", 1) == ELLIPSIS


def test_a_trimmed_prefix_drops_a_last_grapheme_ending_in_a_space_whole() -> None:
    # U+0600 (a prepended mark) and the space after it are one grapheme (UAX #29 GB9b):
    # stripping the space alone would leave the mark bare.
    text = "T" * 8 + "\u0600 " + "xyz"
    assert grapheme_prefix(text, 10) == "T" * 8 + "\u0600 "
    assert trimmed_prefix(text, 10) == "T" * 8
    assert trimmed_prefix("ab  \r\ncd", 6) == "ab"
    assert trimmed_prefix("ab" + THUMB, 4) == "ab" + THUMB
    assert trimmed_prefix("   ", 2) == ""
