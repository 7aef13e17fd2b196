"""Numbers and uids of imported lorebooks and cards (review 142, findings 3, 5, 7, 8): every
imported book and card converts to its proto; a number no int32 holds is refused (order,
priority, a card's dates) or clamped where a larger one means the same (timed effects, the
token budget); a book stored before still converts; uids are distinct ASCII numbers; a
card's character fields have UpdatePersonality's 64,000-character limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tzurot.gateway import lore_convert
from tzurot.gateway.admin.cards import _read_card
from tzurot.gateway.cards.lore_numbers import INT32_MAX, MAX_TIMED
from tzurot.gateway.cards.lorebooks import (
    Lorebook,
    lorebook_v3_document,
    parse_lorebook_document,
    to_card_book,
    to_world_info,
)
from tzurot.gateway.lore import StoredLorebook
from tzurot.runtime.errors import InvalidArgument

HUGE = 3_000_000_000


def world_info(*entries: dict[str, Any]) -> bytes:
    return json.dumps(
        {"entries": {str(i): {"key": ["k"], "content": "x", **e} for i, e in enumerate(entries)}}
    ).encode()


def card_book(**entry: Any) -> bytes:
    return json.dumps(
        {"spec": "lorebook_v3", "data": {"entries": [{"keys": ["k"], "content": "x", **entry}]}}
    ).encode()


def card(**data: Any) -> bytes:
    return json.dumps(
        {"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "Zed", **data}}
    ).encode()


def converts(book: Lorebook) -> None:
    lore_convert.lorebook(StoredLorebook(id="b", book=book, owner_user_id="u"))


# ---- finding 3: numbers within the protos ----


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (world_info({"uid": 0, "order": HUGE}), "entries.0.order"),
        (world_info({"uid": 0, "order": -HUGE}), "entries.0.order"),
        (card_book(insertion_order=HUGE), "entries.0.insertion_order"),
        (card_book(insertion_order=0, priority=HUGE), "entries.0.priority"),
    ],
)
def test_an_order_or_priority_outside_int32_is_refused_naming_it(
    document: bytes, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_lorebook_document(document)
    assert (caught.value.field, caught.value.reason) == (field, "NUMBER_OUT_OF_RANGE")
    assert f"between {-(2**31)} and {INT32_MAX}" in caught.value.message


@pytest.mark.parametrize(
    ("st_name", "field"),
    [
        ("sticky", "sticky"),
        ("cooldown", "cooldown"),
        ("delay", "delay"),
        ("delayUntilRecursion", "delay_until_recursion"),
    ],
)
def test_timed_effects_past_the_limit_are_clamped_and_convert(st_name: str, field: str) -> None:
    book = parse_lorebook_document(world_info({"uid": 0, st_name: HUGE}))
    assert getattr(book.entries[0], field) == MAX_TIMED
    converts(book)
    ext = {"sticky": HUGE, "cooldown": HUGE, "delay": HUGE, "delay_until_recursion": HUGE}
    book = parse_lorebook_document(card_book(extensions=ext))
    assert getattr(book.entries[0], field) == MAX_TIMED
    converts(book)


def test_a_token_budget_past_int32_is_clamped_and_converts() -> None:
    doc = {"spec": "lorebook_v3", "data": {"token_budget": HUGE, "entries": []}}
    book = parse_lorebook_document(json.dumps(doc).encode())
    assert book.token_budget == INT32_MAX
    converts(book)


def test_a_book_stored_with_numbers_past_int32_still_converts() -> None:
    entry = {"uid": "0", "order": HUGE, "priority": -HUGE, "sticky": HUGE, "cooldown": HUGE}
    entry |= {"delay": HUGE, "delay_until_recursion": HUGE}
    book = Lorebook.model_validate({"token_budget": HUGE, "entries": [entry]})
    message = lore_convert.lorebook(StoredLorebook(id="b", book=book, owner_user_id="u"))
    (converted,) = message.entries
    assert (converted.order, converted.priority) == (INT32_MAX, -(2**31))
    assert (converted.sticky, converted.delay_until_recursion) == (MAX_TIMED, MAX_TIMED)
    assert message.token_budget == INT32_MAX


@pytest.mark.parametrize("field", ["creation_date", "modification_date"])
def test_a_card_date_outside_int64_is_refused_naming_it(field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _read_card(card(**{field: 10**20}))
    assert caught.value.field == f"data.{field}"
    assert str(2**63 - 1) in caught.value.message


def test_a_card_stored_with_a_date_past_int64_still_converts() -> None:
    message = lore_convert.character_card({"creation_date": 10**20, "modification_date": -(10**20)})
    assert (message.creation_date, message.modification_date) == (2**63 - 1, -(2**63))


def test_an_imported_card_converts() -> None:
    draft, _ = _read_card(card(creation_date=1_700_000_000, modification_date=1_700_000_001))
    lore_convert.character_card(draft.card)


# ---- finding 5: a card's character fields ----


@pytest.mark.parametrize(
    ("card_field", "data"),
    [
        ("data.description", {"description": "d" * 64_001}),
        ("data.personality", {"personality": "d" * 64_001}),
        ("data.scenario", {"scenario": "d" * 64_001}),
        ("data.mes_example", {"mes_example": "d" * 64_001}),
        ("data.post_history_instructions", {"post_history_instructions": "d" * 64_001}),
        (
            "data.extensions.depth_prompt.prompt (or tzurot.author_note)",
            {"extensions": {"depth_prompt": {"prompt": "d" * 64_001, "depth": 4}}},
        ),
    ],
)
def test_a_card_field_over_64000_characters_is_refused_naming_it(
    card_field: str, data: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _read_card(card(**data))
    assert caught.value.field == card_field
    assert "longer than 64000 characters" in caught.value.message


def test_a_card_field_of_64000_characters_is_accepted() -> None:
    draft, _ = _read_card(card(description="d" * 64_000))
    assert len(draft.seed.character.description) == 64_000


# ---- findings 7 and 8: uids ----


def test_a_non_ascii_digit_uid_is_renumbered_and_exports() -> None:
    book = parse_lorebook_document(world_info({"uid": "²"}, {"uid": 0}))
    assert [e.uid for e in book.entries] == ["1", "0"]
    assert sorted(to_world_info(book)["entries"]) == ["0", "1"]
    to_card_book(book)


def test_duplicate_uids_are_renumbered_so_each_entry_fires_and_exports() -> None:
    doc = {
        "entries": {
            "0": {"uid": 5, "key": ["a"], "content": "A"},
            "1": {"uid": 5, "key": ["b"], "content": "B"},
            "2": {"uid": "05", "key": ["c"], "content": "C"},
        }
    }
    book = parse_lorebook_document(json.dumps(doc).encode())
    assert [e.uid for e in book.entries] == ["5", "0", "1"]
    assert {e["content"] for e in to_world_info(book)["entries"].values()} == {"A", "B", "C"}


def test_a_non_numeric_uid_never_collides_with_a_numeric_one() -> None:
    doc = {
        "entries": {
            "a": {"uid": "x", "key": ["a"], "content": "A"},
            "b": {"uid": 0, "key": ["b"], "content": "B"},
        }
    }
    book = parse_lorebook_document(json.dumps(doc).encode())
    assert [e.uid for e in book.entries] == ["1", "0"]
    assert len(to_world_info(book)["entries"]) == 2


def test_card_book_ids_are_made_unique() -> None:
    doc = {
        "spec": "lorebook_v3",
        "data": {
            "entries": [
                {"keys": ["a"], "content": "A", "id": 3},
                {"keys": ["b"], "content": "B", "id": 3},
                {"keys": ["c"], "content": "C", "id": "²"},
                {"keys": ["d"], "content": "D", "id": 10**30},
            ]
        },
    }
    book = parse_lorebook_document(json.dumps(doc).encode())
    assert [e.uid for e in book.entries] == ["3", "0", "1", "2"]
    ids = [e["id"] for e in lorebook_v3_document(book)["data"]["entries"]]
    assert ids == [3, 0, 1, 2]


def test_a_book_stored_with_bad_uids_exports_every_entry() -> None:
    entries = [{"uid": uid, "content": uid} for uid in ("²", "5", "5", "x", "0")]
    book = Lorebook.model_validate({"entries": entries})
    exported = to_world_info(book)["entries"]
    assert len(exported) == 5
    assert {e["uid"] for e in exported.values()} == {0, 1, 2, 3, 5}
    lorebook_v3_document(book)
