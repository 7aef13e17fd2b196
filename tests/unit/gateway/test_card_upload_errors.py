"""Hostile or broken cards and lorebooks: each is refused as InvalidArgument naming the problem
(they ended as INTERNAL, or as UNIMPLEMENTED, before)."""

from __future__ import annotations

import base64
import io
import json
import math
import zipfile
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from tzurot.gateway.cards import codec
from tzurot.gateway.cards.lorebooks import (
    MAX_ENTRIES,
    MAX_LOREBOOK_BYTES,
    from_card_book,
    from_world_info,
    parse_lorebook_document,
)
from tzurot.gateway.cards.mapping import draft_from_card
from tzurot.gateway.cards.spec import Book, BookEntry
from tzurot.runtime.errors import InvalidArgument


def card(book: dict[str, Any] | None = None, **data: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": "Grigori", "description": "A priest.", **data}
    if book is not None:
        fields["character_book"] = book
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": fields}


def entry(**fields: Any) -> dict[str, Any]:
    return {"keys": ["raven"], "content": "Ravenholm.", "insertion_order": 10, **fields}


def card_refused(document: bytes) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        draft_from_card(codec.decode(document))
    return caught.value


def lorebook_refused(document: bytes, name: str = "") -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse_lorebook_document(document, name=name)
    return caught.value


# -- 1. NUL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (card(description="a\x00b"), "data.description"),
        (card(first_mes="hi\x00"), "data.first_mes"),
        (card({"entries": [entry(content="x\x00")]}), "data.character_book.entries[0].content"),
        (
            card(extensions={"tzurot": {"aliases": ["pr\x00iest"]}}),
            "data.extensions.tzurot.aliases[0]",
        ),
    ],
)
def test_a_card_with_nul_is_refused_naming_the_field(document: Any, field: str) -> None:
    error = card_refused(json.dumps(document).encode())
    assert (error.reason, error.field) == ("NUL_CHARACTER", field)


def test_a_png_card_with_nul_is_refused() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("ccv3", base64.b64encode(json.dumps(card(description="\x00")).encode()).decode())
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "PNG", pnginfo=info)
    assert card_refused(out.getvalue()).field == "data.description"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"entries": {"0": {"key": ["a"], "content": "x\x00"}}}, 'entries["0"].content'),
        ({"entries": [entry(name="n\x00")]}, "entries[0].name"),
        (
            {"spec": "lorebook_v3", "data": {"entries": [entry(keys=["\x00"])]}},
            "data.entries[0].keys[0]",
        ),
    ],
)
def test_a_lorebook_with_nul_is_refused_naming_the_field(document: Any, field: str) -> None:
    error = lorebook_refused(json.dumps(document).encode())
    assert (error.reason, error.field) == ("NUL_CHARACTER", field)


# -- 2. numbers that are not finite ----------------------------------------------------------


def test_a_card_book_order_of_1e999_is_refused() -> None:
    document = json.dumps(card({"entries": [entry()]})).replace(
        '"insertion_order": 10', '"insertion_order": 1e999'
    )
    assert card_refused(document.encode()).reason == "INVALID_NUMBER"


@pytest.mark.parametrize(
    "fields", ['"insertion_order": 1e999', '"insertion_order": NaN', '"priority": -Infinity']
)
def test_a_lorebook_with_non_finite_numbers_is_refused(fields: str) -> None:
    document = '{"entries": [{"keys": ["a"], "content": "x", %s}]}' % fields  # noqa: UP031 - JSON braces
    assert lorebook_refused(document.encode()).reason == "INVALID_NUMBER"


def test_a_world_info_order_of_1e999_is_refused() -> None:
    document = b'{"entries": {"0": {"key": ["a"], "content": "x", "order": 1e999}}}'
    assert lorebook_refused(document).reason == "INVALID_NUMBER"


def test_nan_in_a_card_extension_is_refused_not_stored_as_null() -> None:
    document = json.dumps(card(extensions={"app": {"weight": math.nan}})).encode()
    assert card_refused(document).reason == "INVALID_NUMBER"


def test_a_card_book_built_with_infinite_numbers_is_refused() -> None:
    book = Book(entries=[BookEntry(keys=["a"], insertion_order=math.inf)])
    with pytest.raises(InvalidArgument) as caught:
        from_card_book(book)
    assert caught.value.field == "entries.0.insertion_order"
    book = Book(entries=[BookEntry(keys=["a"], priority=-math.inf)])
    with pytest.raises(InvalidArgument):
        from_card_book(book)


def test_world_info_infinite_numbers_fall_back_to_defaults() -> None:
    raw = {"key": ["a"], "order": math.inf, "depth": -math.inf, "scanDepth": math.inf}
    lore = from_world_info({"entries": {"0": raw}})
    assert (lore.entries[0].order, lore.entries[0].depth, lore.entries[0].scan_depth) == (
        100,
        4,
        None,
    )


# -- 3. nesting and long integers ------------------------------------------------------------

DEEP = "[" * 5000 + "]" * 5000


def test_a_deeply_nested_card_is_refused() -> None:
    document = json.dumps(card(extensions={"x": 1})).replace("1}", DEEP + "}")
    assert card_refused(document.encode()).reason == "NESTED_TOO_DEEP"


def test_a_deeply_nested_lorebook_is_refused() -> None:
    assert lorebook_refused(('{"entries": ' + DEEP + "}").encode()).reason == "NESTED_TOO_DEEP"


def test_integers_too_long_to_convert_are_refused() -> None:
    digits = "9" * 5000
    assert card_refused(f'{{"name": "x", "n": {digits}}}'.encode()).reason == "INVALID_NUMBER"
    assert lorebook_refused(f'{{"entries": [], "n": {digits}}}'.encode()).reason == "INVALID_NUMBER"


# -- 4. Tzurot's own extension ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "field"),
    [
        ({"aliases": 5}, "aliases"),
        ({"aliases": "the priest"}, "aliases"),
        ({"cleanup_rules": 5}, "cleanup_rules"),
        ({"cleanup_rules": {"pattern": "x"}}, "cleanup_rules"),
    ],
)
def test_extension_lists_of_the_wrong_type_are_refused(ours: dict[str, Any], field: str) -> None:
    error = card_refused(json.dumps(card(extensions={"tzurot": ours})).encode())
    assert error.field == f"data.extensions.tzurot.{field}"
    assert "must be a list" in error.message


# -- 5. a card's book within a lorebook file's limits ----------------------------------------


@pytest.mark.parametrize(
    ("book", "reason", "field"),
    [
        ({"entries": [entry()] * (MAX_ENTRIES + 1)}, "TOO_LARGE", "data.character_book.entries"),
        (
            {"entries": [entry(content="x" * MAX_LOREBOOK_BYTES)]},
            "TOO_LARGE",
            "data.character_book",
        ),
        (
            {"entries": [entry(extensions={"depth": 1001})]},
            "BAD_CARD",
            "data.character_book.entries.0.depth",
        ),
        (
            {"entries": [entry(extensions={"scan_depth": 1001})]},
            "BAD_CARD",
            "data.character_book.entries.0.scan_depth",
        ),
        ({"scan_depth": 1001, "entries": []}, "BAD_CARD", "data.character_book.scan_depth"),
    ],
)
def test_a_card_book_beyond_the_lorebook_limits_is_refused(
    book: dict[str, Any], reason: str, field: str
) -> None:
    error = card_refused(json.dumps(card(book)).encode())
    assert (error.reason, error.field) == (reason, field)


# -- 6. broken CHARX -------------------------------------------------------------------------

CARD_JSON = json.dumps(card()).encode()


def charx(compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        archive.writestr("card.json", CARD_JSON)
    return out.getvalue()


def test_a_charx_with_a_bad_crc_is_refused() -> None:
    data = charx().replace(b"Grigori", b"Grigorj")
    assert "damaged" in card_refused(data).message


def test_a_charx_with_corrupt_deflate_data_is_refused() -> None:
    data = bytearray(charx(zipfile.ZIP_DEFLATED))
    start = 30 + len("card.json")  # the local header, then the compressed bytes
    data[start : start + 8] = b"\xff" * 8
    assert "damaged" in card_refused(bytes(data)).message


def test_a_charx_with_an_unsupported_compression_method_is_invalid_not_unimplemented() -> None:
    data = bytearray(charx())
    data[8:10] = (99).to_bytes(2, "little")  # the local header's method
    central = data.index(b"PK\x01\x02")
    data[central + 10 : central + 12] = (99).to_bytes(2, "little")
    error = card_refused(bytes(data))
    assert (error.reason, error.field) == ("BAD_CARD", "document")
    assert "compression method" in error.message


# -- 7. a lorebook whose `data` is not an object ---------------------------------------------


def test_a_lorebook_with_a_string_data_field_is_read() -> None:
    lore = parse_lorebook_document(b'{"data": "x", "entries": []}', name="Ravenholm")
    assert (lore.name, lore.entries) == ("Ravenholm", [])
