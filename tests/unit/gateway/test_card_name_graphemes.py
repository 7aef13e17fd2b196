"""A card's name longer than a personality's 80 characters is cut between characters as a
reader sees them (review: cut at code point 80, a thumb lost its skin tone), on the import path
(`_read_card`): the personality's name and the title of a card book without one of its own."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.gateway.test_cards import BOOK_V2, v2_card
from tzurot.gateway.admin.cards import _read_card
from tzurot.gateway.cards.lorebooks import MAX_LOREBOOK_NAME
from tzurot.gateway.cards.mapping import MAX_NAME

THUMB = "👍🏽"  # two code points, one character as a reader sees it
UNNAMED_BOOK: dict[str, Any] = {k: v for k, v in BOOK_V2.items() if k != "name"}


def _imported(name: str) -> Any:
    card = v2_card(name=name, character_book=UNNAMED_BOOK)
    card["data"]["extensions"]["tzurot"] = {"slug": "long-name"}
    draft, _ = _read_card(json.dumps(card).encode())
    return draft


def test_an_emoji_across_the_limit_is_left_out_whole_from_the_name_and_the_books_title() -> None:
    draft = _imported("N" * (MAX_NAME - 1) + THUMB + " tail")
    assert draft.seed.name == "N" * (MAX_NAME - 1)
    assert draft.lorebook.name == "N" * (MAX_NAME - 1) + " (card)"


def test_an_emoji_that_ends_at_the_limit_is_kept_whole() -> None:
    draft = _imported("N" * (MAX_NAME - 2) + THUMB + " tail")
    assert draft.seed.name == "N" * (MAX_NAME - 2) + THUMB
    assert draft.lorebook.name == draft.seed.name + " (card)"
    assert len(draft.lorebook.name) <= MAX_LOREBOOK_NAME


def test_a_cut_at_a_space_leaves_no_space_at_the_end() -> None:
    draft = _imported("N" * (MAX_NAME - 1) + " tail")
    assert draft.seed.name == "N" * (MAX_NAME - 1)
    assert draft.lorebook.name == "N" * (MAX_NAME - 1) + " (card)"


def test_a_first_character_longer_than_the_limit_is_still_a_name() -> None:
    zalgo = "Z" + "\u0301" * (MAX_NAME + 20)  # one grapheme of 101 code points
    draft = _imported(zalgo)
    assert draft.seed.name == zalgo[:MAX_NAME]
