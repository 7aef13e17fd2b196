"""A lorebook import checks that both of its exports would import again by counting them
(`export_size`), not writing them: writing both cost some 80 times a file of many tiny
extension values, and three imports at once took the gateway past its 512 MiB (review 160, 2).
The count is the export's exact size, in any book."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from tests.unit.gateway.test_lorebook_round_trip_size import near_limit_document
from tzurot.gateway.cards import lorebooks
from tzurot.gateway.cards.json_size import Measured, json_bytes, measure
from tzurot.gateway.cards.lorebooks import (
    Lorebook,
    export_document,
    export_size,
    read_lorebook_document,
)
from tzurot.runtime.errors import InvalidArgument

ODD_WORLD_INFO = {
    "name": "Ödland \u0001",
    "entries": {
        "0": {
            "uid": 0,
            "key": ["a", "é", 'say "hi"\\'],
            "keysecondary": ["s"],
            "selective": False,
            "content": '\x01"é😀\n\t',
            "extra": {"x": [1.5, None, True, -0.0, 1e300, [], {}], "ü": "\u2028"},
            "position": 5,
            "sticky": 3,
        },
        "1": {"uid": "nine", "key": [], "content": "", "scanDepth": None, "comment": "c"},
    },
}
ODD_CARD_BOOK = {
    "spec": "lorebook_v3",
    "data": {
        "name": "B",
        "extensions": {"q": 1, "deep": [[[{"k": [0.1]}]]]},
        "newfield": [1],
        "entries": [
            {
                "id": "x",
                "keys": ["k"],
                "content": "c",
                "name": "nm",
                "priority": 2.5,
                "weird": {"a": None},
                "extensions": {"position": 7, "z": []},
            },
            {"keys": ["/re+/"], "content": "ü", "selective": True, "secondary_keys": ["b"]},
        ],
    },
}


def tiny_values(entries: int, per_entry: int) -> bytes:
    """The review's shape: entries whose extensions hold many tiny objects."""
    document = {
        "entries": {
            str(n): {
                "uid": n,
                "key": ["k"],
                "content": "c",
                "x": [{"a": j} for j in range(per_entry)],
            }
            for n in range(entries)
        }
    }
    return json.dumps(document, separators=(",", ":")).encode()


def books() -> list[Lorebook]:
    return [
        read_lorebook_document(json.dumps(ODD_WORLD_INFO).encode())[0],
        read_lorebook_document(json.dumps(ODD_CARD_BOOK).encode())[0],
        read_lorebook_document(tiny_values(20, 30))[0],
        read_lorebook_document(near_limit_document())[0],
        Lorebook(name="empty", entries=[]),
    ]


@pytest.mark.parametrize("fmt", ["lorebook_v3", "world_info"])
def test_the_counted_size_is_the_exports(fmt: Any) -> None:
    for book in books():
        assert export_size(book, fmt) == len(export_document(book, fmt))


@pytest.mark.parametrize("indent", [None, 2, 4])
def test_json_bytes_is_what_json_dumps_writes(indent: int | None) -> None:
    separators = None if indent else (",", ":")
    for value in [ODD_WORLD_INFO, ODD_CARD_BOOK, [], {}, "x", 3, (1, (2,)), {1: "a", None: 2}]:
        written = json.dumps(value, ensure_ascii=False, indent=indent, separators=separators)
        assert json_bytes(value, indent=indent) == len(written.encode())


def test_a_measured_part_stands_in_for_itself_at_any_depth() -> None:
    part = ODD_WORLD_INFO["entries"]
    whole = {"a": {"b": [part, part]}}
    stand_in = measure(part, indent=2)
    assert isinstance(stand_in, Measured)
    written = json.dumps(whole, ensure_ascii=False, indent=2).encode()
    assert json_bytes({"a": {"b": [stand_in, stand_in]}}, indent=2) == len(written)


def test_checking_the_exports_holds_little_memory() -> None:
    """The check alone, on a book already read: it held both exports, their dicts and their
    UTF-8 copies (about 50 times the file here); now an entry at a time."""
    data = tiny_values(300, 220)  # 0.6 MB
    book = read_lorebook_document(data)[0]
    tracemalloc.start()
    try:
        lorebooks._check_exports_fit(book)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(data), f"peak {peak} bytes"


def test_a_whole_import_of_tiny_values_stays_within_some_20_times_the_file() -> None:
    data = tiny_values(300, 220)
    tracemalloc.start()
    try:
        read_lorebook_document(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * len(data), f"peak {peak} bytes"  # 80 times when the exports were written


def test_a_book_whose_export_would_not_fit_is_still_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    book = read_lorebook_document(tiny_values(20, 30))[0]
    size = export_size(book, "lorebook_v3")
    monkeypatch.setattr(lorebooks, "MAX_LOREBOOK_DOCUMENT_BYTES", size - 1)
    with pytest.raises(InvalidArgument) as caught:
        lorebooks._check_exports_fit(book)
    assert caught.value.reason == "TOO_LARGE"
    assert f"exported as lorebook_v3, this lorebook would be {size} bytes" in caught.value.message
