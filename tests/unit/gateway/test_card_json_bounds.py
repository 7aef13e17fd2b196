"""A card's JSON is bounded before the costly steps: its bytes before parsing (a CHARX's
card.json before it is read out of the zip) and its number of values before validation, so
an upload of millions of tiny values is refused quickly, in bounded memory (review 142, 6)."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from tzurot.gateway.admin.cards import _read_card
from tzurot.gateway.cards import codec
from tzurot.gateway.cards.lorebooks import parse_lorebook_document
from tzurot.gateway.cards.mapping import CharacterView, card_from_view
from tzurot.gateway.rules import rules_to_json
from tzurot.gateway.uploaded_json import MAX_JSON_VALUES, check_uploaded_value
from tzurot.runtime.errors import InvalidArgument

_HEAD = b'{"spec":"chara_card_v3","spec_version":"3.0","data":{"name":"Zed","extensions":{"x":['
_TAIL = b"]}}}"


def _wide_card(item: bytes, count: int) -> bytes:
    return _HEAD + b",".join([item] * count) + _TAIL


def _refused_within(read: Callable[[], Any], *, peak_bytes: int, seconds: float) -> InvalidArgument:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(InvalidArgument) as caught:
            read()
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < peak_bytes, f"peak {peak} bytes"
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    return caught.value


def test_a_16_mb_json_card_is_refused_before_it_is_parsed() -> None:
    document = _wide_card(b"{}", 5_400_000)  # the reviewer's 16 MB `[{},{},…]`
    assert codec.MAX_CARD_JSON_BYTES < len(document) <= codec.MAX_CARD_BYTES
    error = _refused_within(lambda: _read_card(document), peak_bytes=4 << 20, seconds=1)
    assert error.reason == "CARD_TOO_LARGE"
    assert str(codec.MAX_CARD_JSON_BYTES) in error.message


@pytest.mark.parametrize("item", [b"0", b"{}", b'{"a,[{":[]}', b"[ ]"])
def test_a_small_card_of_too_many_values_is_refused_before_it_is_parsed(item: bytes) -> None:
    """Counted in its bytes (commas and brackets outside strings, empty ones aside) before
    `json.loads` builds them: half a million `{}` parsed took some 40 MB (review 160, 11)."""
    document = _wide_card(item, MAX_JSON_VALUES)  # 1 to 6 MB, within the byte cap
    error = _refused_within(lambda: _read_card(document), peak_bytes=3 * len(document), seconds=10)
    assert error.reason == "TOO_LARGE"
    assert f"more than {MAX_JSON_VALUES} JSON values" in error.message
    assert error.field == "document"


@pytest.mark.parametrize("item", [b"0", b"{}", b'{"a,[{":[ ]}', b'"x,y"'])
def test_a_card_of_exactly_the_values_allowed_is_read(item: bytes) -> None:
    """The count before parsing is exact: the extensions list, its items, and the rest of the
    card (its object, `spec`, `spec_version`, `data`, `name`, `extensions`, `x`) make the
    limit."""
    values_in_item = 2 if item.startswith(b'{"') else 1
    document = _wide_card(item, (MAX_JSON_VALUES - 7) // values_in_item)
    assert codec.decode(document).card.data.name == "Zed"
    with pytest.raises(InvalidArgument):
        codec.decode(_wide_card(item, (MAX_JSON_VALUES - 7) // values_in_item + 1))


def test_a_charx_card_json_over_the_cap_is_refused_before_it_is_read() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", _wide_card(b" ", codec.MAX_CARD_JSON_BYTES // 2))
    data = out.getvalue()
    assert len(data) < 1 << 20  # 10 MB of JSON, deflated
    error = _refused_within(lambda: codec.decode(data), peak_bytes=4 << 20, seconds=1)
    assert error.reason == "CARD_TOO_LARGE"
    assert "card.json" in error.message


def test_a_lorebook_of_too_many_values_is_refused() -> None:
    entry = b'{"keys":[' + b",".join([b"0"] * MAX_JSON_VALUES) + b'],"content":"x"}'
    with pytest.raises(InvalidArgument) as caught:
        parse_lorebook_document(b'{"entries":[' + entry + b"]}")
    assert caught.value.reason == "TOO_LARGE"


def test_the_value_bound_counts_every_value() -> None:
    document = {"a": [1, "two", {"b": None}], "c": True}  # 7 values with the document
    check_uploaded_value(document, what="the card", max_values=7)
    with pytest.raises(InvalidArgument) as caught:
        check_uploaded_value(document, what="the card", max_values=6)
    assert caught.value.field == "c"
    assert caught.value.reason == "TOO_LARGE"


def _large_card() -> dict[str, Any]:
    keys = [f"key{index:03d}" for index in range(100)]
    entries = [
        {"keys": keys, "content": "c" * 700, "insertion_order": index, "id": index}
        for index in range(2000)
    ]
    book = {"entries": entries}
    data = {"name": "Zed", "description": "A large card.", "character_book": book}
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": data}


def test_a_card_with_a_lorebook_near_its_cap_imports_and_its_json_export_imports_again() -> None:
    document = json.dumps(_large_card(), separators=(",", ":")).encode()
    draft, _ = _read_card(document)
    assert draft.lorebook is not None
    assert len(draft.lorebook.entries) == 2000
    seed = draft.seed
    exported = codec.encode_json(
        card_from_view(
            CharacterView(
                name=seed.name,
                slug=seed.effective_slug,
                aliases=tuple(seed.aliases),
                avatar_url=seed.avatar_url,
                system_prompt=seed.system_prompt,
                description=seed.character.description,
                personality=seed.character.personality,
                scenario=seed.character.scenario,
                example_dialogues=seed.character.example_dialogues,
                post_history_instructions=seed.character.post_history_instructions,
                error_message=seed.error_message,
                birthday=seed.birthday,
                nsfw=seed.nsfw,
                public=seed.public,
                card=dict(draft.card),
                lorebook=draft.lorebook,
                cleanup_rules=rules_to_json(seed.rules),
            )
        )
    )
    assert len(exported) > 6 * 1024 * 1024  # indented: why the cap is above 6 MB
    again, _ = _read_card(exported)
    assert again.lorebook is not None
    assert len(again.lorebook.entries) == 2000
