"""SillyTavern's outlet entries (world info position 7) are kept and exported as 7, and never
placed in a prompt: SillyTavern places them only where `{{outlet::name}}` names them, a
macro Tzurot does not have (review 142, 11)."""

from __future__ import annotations

import json
from typing import Any

from tzurot.gateway import lore_convert
from tzurot.gateway.cards.lorebooks import (
    from_card_book,
    is_outlet,
    parse_lorebook_document,
    to_card_book,
    to_world_info,
    without_outlets,
)
from tzurot.gateway.lore import LoreContext, StoredLorebook
from tzurot.inference.lore import convert as inference_convert
from tzurot.inference.lore.model import LoreInput
from tzurot.inference.lore.prompting import run_lore


def _world_info() -> dict[str, Any]:
    common = {"key": ["raven"], "constant": True, "order": 100}
    return {
        "entries": {
            "0": {"uid": 0, "content": "Always here.", "position": 0, **common},
            "1": {
                "uid": 1,
                "content": "Only through an outlet.",
                "position": 7,
                "outletName": "secrets",
                **common,
            },
        }
    }


def test_an_outlet_entry_round_trips_as_world_info() -> None:
    book = parse_lorebook_document(json.dumps(_world_info()).encode())
    assert [is_outlet(entry) for entry in book.entries] == [False, True]
    exported = to_world_info(book)["entries"]
    assert exported["1"]["position"] == 7
    assert exported["1"]["outletName"] == "secrets"
    assert exported["0"]["position"] == 0
    again = parse_lorebook_document(json.dumps(to_world_info(book)).encode())
    assert to_world_info(again) == to_world_info(book)


def test_an_outlet_entry_round_trips_in_a_card_book() -> None:
    book = parse_lorebook_document(json.dumps(_world_info()).encode())
    card_book = to_card_book(book)
    outlet = card_book.entries[1]
    assert outlet.extensions["position"] == 7
    assert outlet.position == "after_char"  # as SillyTavern writes a card's entry of 7
    again = from_card_book(card_book)
    assert [is_outlet(entry) for entry in again.entries] == [False, True]
    assert to_world_info(again)["entries"]["1"]["position"] == 7


def test_an_outlet_entry_moved_elsewhere_is_no_longer_one() -> None:
    book = parse_lorebook_document(json.dumps(_world_info()).encode())
    book.entries[1].position = "after_char"
    assert not is_outlet(book.entries[1])
    assert to_world_info(book)["entries"]["1"]["position"] == 1
    assert to_card_book(book).entries[1].extensions["position"] == 1


def test_an_outlet_entry_is_not_in_the_prompt() -> None:
    book = parse_lorebook_document(json.dumps(_world_info()).encode())
    generation_book = without_outlets(book)  # what the lore store gives a generation
    context = LoreContext(books=(("personality", StoredLorebook("b1", generation_book, None)),))
    books = inference_convert.books(lore_convert.lore_context(context))
    result = run_lore(
        LoreInput(books=books),
        [],
        "hello raven",
        budget_cap=10_000,
        count=len,
        substitute=lambda text: text,
        seed="job",
    )
    placed = [activation.content for activation in result.activated]
    assert placed == ["Always here."]
    assert [entry.content for entry in book.entries] == [
        "Always here.",
        "Only through an outlet.",
    ]  # the stored book keeps it
