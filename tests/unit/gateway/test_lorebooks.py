"""Lorebook formats: SillyTavern world info and card books, in and out unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tzurot.gateway.cards.lorebooks import (
    from_world_info,
    lorebook_v3_document,
    parse_lorebook_document,
    to_world_info,
)
from tzurot.runtime.errors import InvalidArgument

WORLD_INFO: dict[str, Any] = {
    "entries": {
        "0": {
            "uid": 0,
            "key": ["Ravenholm", "/raven(holm)?/i"],
            "keysecondary": ["mine"],
            "comment": "the town",
            "content": "Ravenholm is a mining town.",
            "constant": False,
            "selective": True,
            "selectiveLogic": 2,
            "order": 120,
            "position": 4,
            "disable": False,
            "excludeRecursion": True,
            "preventRecursion": False,
            "delayUntilRecursion": 2,
            "probability": 80,
            "useProbability": True,
            "depth": 3,
            "role": 2,
            "scanDepth": 5,
            "caseSensitive": True,
            "matchWholeWords": True,
            "sticky": 2,
            "cooldown": 1,
            "delay": 4,
            "group": "places",
            "vectorized": False,
        },
        "1": {
            "uid": 1,
            "key": ["priest"],
            "content": "Grigori guards it.",
            "position": 2,
            "constant": True,
            "disable": True,
        },
    }
}


def test_world_info_fields() -> None:
    book = from_world_info(WORLD_INFO, name="Ravenholm")
    first, second = book.entries
    assert book.name == "Ravenholm"
    assert first.keys == ["Ravenholm", "/raven(holm)?/i"]
    assert first.secondary_keys == ["mine"]
    assert first.logic == "NOT_ANY"
    assert (first.position, first.depth, first.role) == ("at_depth", 3, "assistant")
    assert (first.probability, first.scan_depth, first.order) == (80, 5, 120)
    assert (first.case_sensitive, first.match_whole_words) == (True, True)
    assert (first.sticky, first.cooldown, first.delay) == (2, 1, 4)
    assert (first.exclude_recursion, first.delay_until_recursion) == (True, 2)
    assert first.extensions == {"group": "places", "vectorized": False}
    assert second.constant
    assert not second.enabled
    assert second.position == "at_depth"  # the author's-note anchor, kept for export
    assert second.extensions["position"] == 2


def test_world_info_round_trip() -> None:
    book = from_world_info(WORLD_INFO, name="Ravenholm")
    again = from_world_info(to_world_info(book))
    assert again == book
    exported = to_world_info(book)["entries"]["1"]
    assert exported["position"] == 2


def test_lorebook_v3_round_trip() -> None:
    book = from_world_info(WORLD_INFO, name="Ravenholm")
    document = json.dumps(lorebook_v3_document(book)).encode()
    assert parse_lorebook_document(document) == book


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "a JSON object"),
        (b'{"entries": {"0": 5}}', "each entry must be an object"),
        (
            b'{"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "x"}}',
            "no character_book",
        ),
        (b'{"entries": [{"keys": ["a"], "content": 5}]}', "entries.0.content"),
    ],
)
def test_bad_lorebooks(data: bytes, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_lorebook_document(data)
    assert words in caught.value.message
