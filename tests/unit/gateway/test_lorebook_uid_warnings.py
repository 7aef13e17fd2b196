"""An import that renumbers an entry's uid (repeated, or not a number) tells the importer:
the entry, the old uid and the new one; a card import's warnings carry them."""

from __future__ import annotations

import json

from tests.unit.gateway.test_cards import v2_card
from tzurot.gateway.cards import codec
from tzurot.gateway.cards.lore_checks import MAX_UID_WARNINGS
from tzurot.gateway.cards.lorebooks import read_lorebook_document
from tzurot.gateway.cards.mapping import draft_from_card


def test_renumbered_uids_are_told_with_the_entry_and_both_uids() -> None:
    document = {
        "entries": {
            "0": {"uid": 0, "key": ["a"], "comment": "Bridge"},
            "1": {"uid": 0, "key": ["b"], "comment": "Tunnel"},  # repeated
            "2": {"uid": "mine", "key": ["c"], "comment": "Mine"},  # not a number
            "3": {"uid": "007", "key": ["d"], "comment": "Agent"},  # the same number: kept
        }
    }
    book, warnings = read_lorebook_document(json.dumps(document).encode())
    assert [e.uid for e in book.entries] == ["0", "1", "2", "7"]
    assert warnings == [
        "lorebook: entry '0' (Tunnel) repeats an earlier entry's uid; renumbered '0' → 1",
        "lorebook: entry 'mine' (Mine) had no numeric uid; renumbered 'mine' → 2",
    ]


def test_a_book_of_many_renumbered_uids_tells_the_first_few_and_how_many_more() -> None:
    entries = {str(n): {"uid": "x", "key": [f"k{n}"]} for n in range(25)}
    _, warnings = read_lorebook_document(json.dumps({"entries": entries}).encode())
    assert len(warnings) == MAX_UID_WARNINGS + 1
    assert warnings[-1].startswith(f"lorebook: {25 - MAX_UID_WARNINGS} more entries renumbered")


def test_a_clean_book_has_no_warnings() -> None:
    entries = {str(n): {"uid": n, "key": [f"k{n}"]} for n in range(5)}
    assert read_lorebook_document(json.dumps({"entries": entries}).encode())[1] == []


def test_a_card_import_warns_of_its_books_renumbered_uids() -> None:
    card = v2_card(
        character_book={
            "entries": [
                {"id": 4, "keys": ["a"], "content": "A", "comment": "Bridge"},
                {"id": 4, "keys": ["b"], "content": "B", "comment": "Tunnel"},
            ]
        }
    )
    draft = draft_from_card(codec.decode(json.dumps(card).encode()))
    assert draft.warnings == [
        "lorebook: entry '4' (Tunnel) repeats an earlier entry's uid; renumbered '4' → 0"
    ]
