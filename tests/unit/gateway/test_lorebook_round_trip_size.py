"""A lorebook near the size limit, imported, exported and imported again: the book is measured
by its text (`book_bytes`) on both ends, so our export (SillyTavern's fields spelled out,
indented) passes where it once grew past the 4 MB check of the file it was read from."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.gateway.test_cards import v2_card, view_of
from tzurot.gateway.admin.cards import _read_card
from tzurot.gateway.cards import codec
from tzurot.gateway.cards.lorebooks import (
    MAX_LOREBOOK_BYTES,
    MAX_LOREBOOK_DOCUMENT_BYTES,
    book_bytes,
    export_document,
    parse_lorebook_document,
)
from tzurot.gateway.cards.mapping import card_from_view, draft_from_card
from tzurot.runtime.errors import InvalidArgument

ENTRIES = 2000


def near_limit_entries(target: int) -> list[dict[str, Any]]:
    """2,000 card-book entries whose contents add up to about `target` bytes."""
    content = "x" * (target // ENTRIES - 120)
    return [
        {"id": n, "keys": [f"key{n}"], "content": content, "comment": f"entry {n}"}
        for n in range(ENTRIES)
    ]


def near_limit_document() -> bytes:
    """A lorebook_v3 file just under 4 MB, nearly all of it text: a book near the limit."""
    document = {"spec": "lorebook_v3", "data": {"entries": near_limit_entries(4_290_000)}}
    data = json.dumps(document, separators=(",", ":")).encode()
    assert 0.97 * MAX_LOREBOOK_BYTES < len(data) <= MAX_LOREBOOK_BYTES
    return data


@pytest.mark.parametrize("fmt", ["lorebook_v3", "world_info"])
def test_a_near_limit_lorebook_imports_again_from_its_export(fmt: str) -> None:
    book = parse_lorebook_document(near_limit_document())
    assert book_bytes(book) > 0.95 * MAX_LOREBOOK_BYTES
    exported = export_document(book, fmt)  # type: ignore[arg-type]  # parametrized literal
    assert len(exported) > MAX_LOREBOOK_BYTES  # the export is larger than the book
    again = parse_lorebook_document(exported)
    assert book_bytes(again) == book_bytes(book)
    assert [e.content for e in again.entries] == [e.content for e in book.entries]


def test_a_near_limit_card_book_imports_again_from_the_card_export() -> None:
    card = v2_card(character_book={"entries": near_limit_entries(4_100_000)})
    draft = draft_from_card(codec.decode(json.dumps(card).encode()))
    assert draft.lorebook is not None
    exported = codec.encode_json(card_from_view(view_of(draft)))
    assert len(json.loads(exported)["data"]["character_book"]["entries"]) == ENTRIES
    again = draft_from_card(codec.decode(exported))
    assert again.lorebook is not None
    assert book_bytes(again.lorebook) == book_bytes(draft.lorebook)


def test_a_book_over_the_limit_as_stored_is_refused() -> None:
    document = {"entries": {"0": {"uid": 0, "key": ["k"], "content": "x" * MAX_LOREBOOK_BYTES}}}
    with pytest.raises(InvalidArgument) as caught:
        parse_lorebook_document(json.dumps(document).encode())
    assert caught.value.reason == "TOO_LARGE"
    assert "holds 4194304 bytes of text" not in caught.value.message  # its own size
    assert f"a lorebook may be at most {MAX_LOREBOOK_BYTES} bytes" in caught.value.message


def test_a_file_over_the_document_limit_is_refused_before_reading() -> None:
    with pytest.raises(InvalidArgument, match="a lorebook file may be at most"):
        parse_lorebook_document(b" " * (MAX_LOREBOOK_DOCUMENT_BYTES + 1))


def test_a_card_whose_indented_json_would_pass_the_card_limit_is_exported_compact() -> None:
    """Small as the file imported, but 300,000 values nested 20 levels deep gain some 40 bytes
    of indentation each: indented, the export would be over `MAX_CARD_JSON_BYTES`."""
    deep: Any = [0] * 300_000
    for _ in range(14):
        deep = [deep]
    entry = {"id": 1, "keys": ["k"], "content": "c", "extensions": {"deep": deep}}
    card = v2_card(character_book={"entries": [entry]})
    draft = draft_from_card(codec.decode(json.dumps(card).encode()))
    exported = codec.encode_json(card_from_view(view_of(draft)))
    indented = json.dumps(json.loads(exported), ensure_ascii=False, indent=2).encode()
    assert len(indented) > codec.MAX_CARD_JSON_BYTES  # as every export was written before
    assert len(exported) <= codec.MAX_CARD_JSON_BYTES
    again = draft_from_card(codec.decode(exported))
    assert again.lorebook == draft.lorebook


def test_a_card_whose_compact_export_would_not_import_again_is_refused() -> None:
    """Within `MAX_CARD_JSON_BYTES` as imported (review 160, 6: 10.4 MB), but each entry's
    fields spelled out make its JSON export 11.3 MB even compact (content of control
    characters, written `\\u0001` either way): refused at import, as a lorebook file whose
    exports would not fit, instead of exported once and never imported again."""
    entries = [{"id": n, "keys": [f"k{n}"], "content": "\x01" * 860} for n in range(2000)]
    data = json.dumps(v2_card(character_book={"entries": entries}), separators=(",", ":"))
    assert len(data) <= codec.MAX_CARD_JSON_BYTES
    draft = draft_from_card(codec.decode(data.encode()))
    assert len(codec.encode_json(card_from_view(view_of(draft)))) > codec.MAX_CARD_JSON_BYTES
    with pytest.raises(InvalidArgument) as caught:
        _read_card(data.encode())
    assert caught.value.reason == "CARD_TOO_LARGE"
    assert "even without indentation" in caught.value.message


def test_the_card_json_counted_at_import_is_the_exports() -> None:
    entries = [{"id": n, "keys": [f"k{n}"], "content": "\x01é" * 50} for n in range(50)]
    card = v2_card(character_book={"entries": entries})
    draft = draft_from_card(codec.decode(json.dumps(card).encode()))
    exported = card_from_view(view_of(draft))
    assert codec.json_export_size(exported) == len(codec.encode_json(exported))
