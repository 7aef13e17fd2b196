"""Key limits at import: keys per entry and regex keys per lorebook, in every format a book
comes in (world info, lorebook_v3, a card's character_book), refused with the entry named; a
regex key inference would refuse to compile is dropped, the importer told."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.gateway.test_cards import v2_card
from tzurot.gateway.cards import codec
from tzurot.gateway.cards.lore_checks import MAX_KEY_WARNINGS
from tzurot.gateway.cards.lorebooks import (
    MAX_KEYS_PER_ENTRY,
    MAX_REGEX_KEYS,
    Lorebook,
    parse_lorebook_document,
    read_lorebook_document,
)
from tzurot.gateway.cards.mapping import draft_from_card
from tzurot.runtime.errors import InvalidArgument


def world_info(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"entries": {str(n): e for n, e in enumerate(entries)}}).encode()


def lorebook_v3(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"spec": "lorebook_v3", "data": {"entries": list(entries)}}).encode()


def refused(document: bytes) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse_lorebook_document(document)
    return caught.value


def test_an_entry_may_have_max_keys_per_entry() -> None:
    half = MAX_KEYS_PER_ENTRY // 2
    keys = [f"k{n}" for n in range(half)]
    second = [f"s{n}" for n in range(MAX_KEYS_PER_ENTRY - half)]
    book = parse_lorebook_document(world_info({"uid": 7, "key": keys, "keysecondary": second}))
    assert len(book.entries[0].keys) + len(book.entries[0].secondary_keys) == MAX_KEYS_PER_ENTRY


@pytest.mark.parametrize(
    "document",
    [
        # primary and secondary keys together
        world_info(
            {"uid": 1, "key": ["ok"]},
            {
                "uid": 7,
                "comment": "the mine",
                "key": [f"k{n}" for n in range(60)],
                "keysecondary": [f"s{n}" for n in range(MAX_KEYS_PER_ENTRY - 59)],
            },
        ),
        # a card book (lorebook_v3)
        lorebook_v3(
            {"keys": ["ok"]},
            {"id": 7, "comment": "the mine", "keys": [f"k{n}" for n in range(101)]},
        ),
        # the V3 decorators' keys count too
        world_info(
            {"uid": 1, "key": ["ok"]},
            {
                "uid": 7,
                "comment": "the mine",
                "key": [f"k{n}" for n in range(90)],
                "content": "@@additional_keys "
                + ",".join(f"a{n}" for n in range(6))
                + "\n@@exclude_keys "
                + ",".join(f"x{n}" for n in range(5))
                + "\nThe mine is deep.",
            },
        ),
    ],
)
def test_too_many_keys_in_one_entry(document: bytes) -> None:
    err = refused(document)
    assert err.code.name == "INVALID_ARGUMENT"
    assert (err.reason, err.field) == ("TOO_MANY_KEYS", "entries.1.keys")
    assert "entry '7' (the mine) has 101 keys" in err.message
    assert f"at most {MAX_KEYS_PER_ENTRY}" in err.message


def regex_entries(count: int, per_entry: int = MAX_KEYS_PER_ENTRY) -> list[dict[str, Any]]:
    """`count` regex keys, `per_entry` to an entry."""
    entries = []
    for n in range(0, count, per_entry):
        keys = [f"/k{n + k}/i" for k in range(min(per_entry, count - n))]
        entries.append({"uid": f"e{n // per_entry}", "key": keys})
    return entries


def test_a_book_may_have_max_regex_keys_and_any_number_of_text_keys() -> None:
    text = [{"uid": f"t{n}", "key": [f"word{n}-{k}" for k in range(100)]} for n in range(20)]
    book = parse_lorebook_document(world_info(*regex_entries(MAX_REGEX_KEYS), *text))
    assert sum(len(e.keys) for e in book.entries) == MAX_REGEX_KEYS + 2000


def test_too_many_regex_keys_in_one_book_names_the_entry_past_the_limit() -> None:
    err = refused(world_info(*regex_entries(MAX_REGEX_KEYS + 1)))
    assert (err.reason, err.field) == ("TOO_MANY_REGEX_KEYS", "entries.10.keys")
    assert f"entry 'e10' takes the book past {MAX_REGEX_KEYS} regex keys" in err.message


def test_every_key_of_a_use_regex_entry_is_a_regex_key() -> None:
    entries = [
        {"id": n, "keys": [f"plain{n}-{k}" for k in range(100)], "use_regex": True}
        for n in range(11)
    ]
    err = refused(lorebook_v3(*entries))
    assert (err.reason, err.field) == ("TOO_MANY_REGEX_KEYS", "entries.10.keys")


def test_a_card_book_over_the_limits_fails_the_card_import() -> None:
    card = v2_card(character_book={"entries": [{"id": 3, "keys": [f"k{n}" for n in range(101)]}]})
    with pytest.raises(InvalidArgument) as caught:
        draft_from_card(codec.decode(json.dumps(card).encode()))
    assert (caught.value.reason, caught.value.field) == ("TOO_MANY_KEYS", "entries.0.keys")
    assert "entry '3' has 101 keys" in caught.value.message


BOMB = "(((a{100}){100}){100}){100}"
"""A regex key `regex_guard` refuses (10^8 nodes expanded): inference would never match it."""


def read(document: bytes) -> tuple[Lorebook, list[str]]:
    return read_lorebook_document(document)


@pytest.mark.parametrize(
    ("document", "left"),
    [
        (
            world_info(
                {"uid": 1, "key": ["ok", "/fine+/i"]},
                {"uid": 7, "comment": "the mine", "key": ["mine", f"/{BOMB}/i"]},
            ),
            {"keys": ["mine"]},
        ),
        # a use_regex entry's plain key is a pattern too
        (
            lorebook_v3(
                {"id": 1, "keys": ["ok"]},
                {"id": 7, "comment": "the mine", "keys": ["mine", BOMB], "use_regex": True},
            ),
            {"keys": ["mine"]},
        ),
        # secondary keys and the V3 decorators' keys are checked too
        (
            world_info(
                {"uid": 1, "key": ["ok"]},
                {
                    "uid": 7,
                    "comment": "the mine",
                    "key": ["mine"],
                    "keysecondary": [f"/{BOMB}/", "x"],
                },
            ),
            {"keys": ["mine"], "secondary_keys": ["x"]},
        ),
        (
            world_info(
                {"uid": 1, "key": ["ok"]},
                {
                    "uid": 7,
                    "comment": "the mine",
                    "key": ["mine"],
                    "content": (
                        f"@@additional_keys deep, /{BOMB}/\n@@@exclude_keys /{BOMB}/\nThe mine."
                    ),
                },
            ),
            {"keys": ["mine"], "content": "@@additional_keys deep\nThe mine."},
        ),
    ],
)
def test_a_regex_key_inference_would_refuse_is_dropped_naming_the_entry(
    document: bytes, left: dict[str, Any]
) -> None:
    """The rest of the book is imported; the importer is told which key of which entry went."""
    book, warnings = read(document)
    assert [e.uid for e in book.entries] == ["1", "7"]
    mine = book.entries[1].model_dump()
    assert {name: mine[name] for name in left} == left
    assert warnings
    assert all(
        w.startswith("lorebook: entry '7' (the mine): dropped the regex key '") for w in warnings
    )
    assert "(((a{100}){100}" in warnings[0]  # the key, to find it by
    assert "would never match (expands past 10000 nodes;" in warnings[0]
    assert book.entries[0].keys in (["ok", "/fine+/i"], ["ok"])


def test_a_regex_key_over_the_length_or_a_groups_count_limit_is_dropped() -> None:
    long_key = "/" + "x" * 2001 + "/"
    book, warnings = read(world_info({"uid": 3, "key": [long_key, "/(?:ab){0,5000}/", "k"]}))
    assert book.entries[0].keys == ["k"]
    assert "longer than 2000 characters" in warnings[0]
    assert "'/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…'" in warnings[0]  # the key, cut short
    assert "a group's repeat count is over 1000" in warnings[1]


@pytest.mark.parametrize(
    "key", [r"/foo[\s\S]{0,1500}bar/s", r"/^.{0,2000}$/", r"/(?:\w{3,30}\s+){2,400}/"]
)
def test_a_wide_repeat_of_one_character_is_kept(key: str) -> None:
    """The review's keys from the wild: they compile in about a millisecond."""
    book, warnings = read(world_info({"uid": 3, "key": [key]}))
    assert (book.entries[0].keys, warnings) == ([key], [])


def test_many_dropped_keys_tell_the_first_few_and_how_many_more() -> None:
    entries = [{"uid": n, "key": [f"k{n}", f"/{BOMB}/"]} for n in range(MAX_KEY_WARNINGS + 5)]
    book, warnings = read(world_info(*entries))
    assert all(e.keys == [f"k{n}"] for n, e in enumerate(book.entries))
    assert len(warnings) == MAX_KEY_WARNINGS + 1
    assert warnings[-1] == "lorebook: 5 more regex keys dropped (they would never match)"


def test_dropped_keys_do_not_count_towards_the_books_regex_keys() -> None:
    entries = [{"uid": 0, "key": [f"/{BOMB}{n}/" for n in range(50)]}]
    entries += [{"uid": n, "key": [f"/r{n}-{k}/" for k in range(50)]} for n in range(1, 21)]
    book, _ = read(world_info(*entries))
    assert book.entries[0].keys == []  # 1,000 regex keys left: within the limit


def test_ordinary_invalid_and_text_keys_are_kept() -> None:
    book, warnings = read(
        world_info(
            {"uid": 1, "key": [r"/\bwyrm(s|lings){1,2}\b/i", "/(a{100}){50}/"]},
            {"uid": 2, "key": ["/(unclosed/"]},  # matches nothing, as in SillyTavern
            {"uid": 3, "key": [BOMB]},  # a text key: never compiled
        )
    )
    assert [len(e.keys) for e in book.entries] == [2, 1, 1]
    assert warnings == []


def test_a_card_whose_book_has_a_bomb_key_is_imported_without_it() -> None:
    card = v2_card(
        character_book={"entries": [{"id": 3, "comment": "trap", "keys": ["t", f"/{BOMB}/"]}]}
    )
    draft = draft_from_card(codec.decode(json.dumps(card).encode()))
    assert draft.lorebook is not None
    assert draft.lorebook.entries[0].keys == ["t"]
    assert draft.warnings[0].startswith("lorebook: entry '3' (trap): dropped the regex key")
