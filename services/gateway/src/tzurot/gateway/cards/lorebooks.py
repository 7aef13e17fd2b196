"""Lorebook documents: a file read in any format SillyTavern writes, and a book exported.

One shape (`lore_model`) from and to SillyTavern world info (`lore_world_info`) and card
`character_book`s (`lore_card_book`), checked the same way whatever the format
(`lore_checks`). This module reads a whole document and writes the export, and re-exports the
names the rest of the gateway uses.

Sizes: a book is measured by its text (`lore_checks.book_bytes`, at most
`MAX_LOREBOOK_BYTES`), the same on import and on re-import of its export, whose own size
(SillyTavern's fields spelled out, indented) is not the book's. A document may be larger
(`MAX_LOREBOOK_DOCUMENT_BYTES`), and a book is accepted only when both of its exports fit
there, so whatever was imported can be exported and imported again. The exports are counted
(`export_size`, `json_size`), not written: writing both cost some 80 times a file of many tiny
values, for every import at once.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ValidationError

from tzurot.gateway.cards.json_size import json_bytes, measure
from tzurot.gateway.cards.lore_card_book import (
    card_book_entry,
    card_book_frame,
    from_card_book,
    to_card_book,
)
from tzurot.gateway.cards.lore_checks import (
    MAX_KEYS_PER_ENTRY,
    MAX_LOREBOOK_BYTES,
    MAX_REGEX_KEYS,
    book_bytes,
    check_key_limits,
    check_size,
)
from tzurot.gateway.cards.lore_model import (
    DEFAULT_DEPTH,
    MAX_ENTRIES,
    MAX_LOREBOOK_NAME,
    OUTLET_POSITION,
    Logic,
    Lorebook,
    LoreEntry,
    LoreRole,
    Position,
    is_outlet,
    without_outlets,
)
from tzurot.gateway.cards.lore_world_info import from_world_info, to_world_info
from tzurot.gateway.cards.spec import parse_book, parse_card
from tzurot.gateway.uploaded_json import MAX_JSON_VALUES, load_uploaded_json
from tzurot.runtime.errors import InvalidArgument

__all__ = [
    "DEFAULT_DEPTH",
    "MAX_ENTRIES",
    "MAX_KEYS_PER_ENTRY",
    "MAX_LOREBOOK_BYTES",
    "MAX_LOREBOOK_DOCUMENT_BYTES",
    "MAX_LOREBOOK_NAME",
    "MAX_REGEX_KEYS",
    "OUTLET_POSITION",
    "Logic",
    "LoreEntry",
    "LoreRole",
    "Lorebook",
    "LorebookFormatName",
    "Position",
    "book_bytes",
    "check_key_limits",
    "export_document",
    "export_size",
    "from_card_book",
    "from_world_info",
    "is_outlet",
    "lorebook_v3_document",
    "parse_lorebook_document",
    "read_lorebook_document",
    "to_card_book",
    "to_world_info",
    "without_outlets",
]

LorebookFormatName = Literal["lorebook_v3", "world_info"]
MAX_LOREBOOK_DOCUMENT_BYTES = 12 * 1024 * 1024
"""A lorebook file. Larger than a book (`MAX_LOREBOOK_BYTES` of text) so that an export
(every field spelled out, indented) fits; within a gRPC message (16 MB) with room to spare."""


def read_lorebook_document(data: bytes, *, name: str = "") -> tuple[Lorebook, list[str]]:
    """A lorebook file (SillyTavern world info, `lorebook_v3`, a bare book, or a card's
    `character_book`) and what the importer is told of (uids renumbered); InvalidArgument
    says what is wrong. CPU-bound on a large book: run it on a worker thread. `name` is the
    book's name when the file gives none: then, longer than `MAX_LOREBOOK_NAME`, it is
    refused; a file with its own title (or a card's book) never uses it, nor checks it."""
    if len(data) > MAX_LOREBOOK_DOCUMENT_BYTES:
        raise InvalidArgument(
            "document",
            f"a lorebook file may be at most {MAX_LOREBOOK_DOCUMENT_BYTES} bytes",
            reason="TOO_LARGE",
        )
    document = load_uploaded_json(
        data, what="the lorebook", reason="BAD_LOREBOOK", max_values=MAX_JSON_VALUES
    )
    if not isinstance(document, dict):
        raise InvalidArgument("document", "a lorebook is a JSON object", reason="BAD_LOREBOOK")
    if name and _takes_given_name(document):
        check_lorebook_name(name)
    warnings: list[str] = []
    try:
        book = _read(document, name, warnings)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise InvalidArgument(
            field, f"lorebook: {field}: {first['msg']}", reason="BAD_LOREBOOK"
        ) from None
    check_size(book)
    _check_exports_fit(book)
    return book, warnings


def check_lorebook_name(name: str) -> str:
    """`name`, given for a book; INVALID_ARGUMENT naming the limit when it is longer."""
    if len(name) > MAX_LOREBOOK_NAME:
        raise InvalidArgument("name", f"name is longer than {MAX_LOREBOOK_NAME} characters")
    return name


def parse_lorebook_document(data: bytes, *, name: str = "") -> Lorebook:
    """`read_lorebook_document`'s book alone."""
    return read_lorebook_document(data, name=name)[0]


_CARD_SPECS = ("chara_card_v2", "chara_card_v3")


def _takes_given_name(document: dict[str, Any]) -> bool:
    """Whether the book read from `document` is named by the name given on import: world
    info or a bare book without a title of its own (a card's book is named by its card)."""
    if isinstance(document.get("entries"), dict):
        return not document.get("name")
    if document.get("spec") in _CARD_SPECS:
        return False
    inner = document.get("data")
    return not (document.get("name") or (isinstance(inner, dict) and inner.get("name")))


def _read(document: dict[str, Any], name: str, warnings: list[str]) -> Lorebook:
    if isinstance(document.get("entries"), dict):
        return from_world_info(document, name=name, warnings=warnings)
    if document.get("spec") in _CARD_SPECS:
        book = parse_card(document).data.character_book
        if book is None:
            raise InvalidArgument(
                "document", "the card has no character_book", reason="BAD_LOREBOOK"
            )
        return from_card_book(book, warnings)
    lore = from_card_book(parse_book(document), warnings)
    if name and _takes_given_name(document):
        lore.name = name  # never longer than MAX_LOREBOOK_NAME: checked on the way in
    return lore


def _check_exports_fit(book: Lorebook) -> None:
    """InvalidArgument when an export of the book would be too large a file to import again
    (only a book of many tiny, deeply nested extension values comes near)."""
    formats: tuple[LorebookFormatName, ...] = ("lorebook_v3", "world_info")
    for fmt in formats:
        size = export_size(book, fmt)
        if size > MAX_LOREBOOK_DOCUMENT_BYTES:
            raise InvalidArgument(
                "document",
                f"exported as {fmt}, this lorebook would be {size} bytes, over the "
                f"{MAX_LOREBOOK_DOCUMENT_BYTES} a lorebook file may have; make it smaller",
                reason="TOO_LARGE",
            )


def lorebook_v3_document(book: Lorebook) -> dict[str, Any]:
    """The export format: `{"spec": "lorebook_v3", "data": <character_book>}`."""
    return {
        "spec": "lorebook_v3",
        "data": to_card_book(book).model_dump(mode="json", exclude_none=True),
    }


def export_document(book: Lorebook, fmt: LorebookFormatName) -> bytes:
    """The book as an exported file: `lorebook_v3` or SillyTavern world info, indented."""
    document = to_world_info(book) if fmt == "world_info" else lorebook_v3_document(book)
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def export_size(book: Lorebook, fmt: LorebookFormatName) -> int:
    """`len(export_document(book, fmt))`, counted without writing it: world info is counted
    from its dicts (they share the book's values), `lorebook_v3` an entry at a time (each
    goes through the card book's model, as its export does, and is dropped once counted)."""
    if fmt == "world_info":
        return json_bytes(to_world_info(book), indent=2)
    entries = [measure(card_book_entry(entry), indent=2) for entry in book.entries]
    frame = card_book_frame(book.model_copy(update={"entries": []}), [])
    data = frame.model_dump(mode="json", exclude_none=True)
    data["entries"] = entries  # in its place, each entry standing in for itself
    return json_bytes({"spec": "lorebook_v3", "data": data}, indent=2)
