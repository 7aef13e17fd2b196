"""A lorebook's name given on import is refused when over the limit, with the limit in the
message, never cut (review: `/lorebook import name` lost its end without a word). The file's
own title, someone else's text, is still cut to it. A name is checked only where it is used, a
file without a title of its own (review: a titled file was refused for a name it would never
use, as the bot sends one with every file)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from tzurot.gateway.admin.base import Principal
from tzurot.gateway.admin.lorebooks import LorebookAdmin
from tzurot.gateway.cards.lorebooks import MAX_LOREBOOK_NAME, read_lorebook_document
from tzurot.gateway.domain import User
from tzurot.runtime.errors import InvalidArgument

ENTRY = {"uid": 0, "key": ["bridge"], "content": "The bridge is old."}
UNTITLED_WORLD_INFO = json.dumps({"entries": {"0": ENTRY}}).encode()
UNTITLED_BOOK = json.dumps({"spec": "lorebook_v3", "data": {"entries": [
    {"keys": ["bridge"], "content": "The bridge is old.", "enabled": True,
     "insertion_order": 100},
]}}).encode()  # fmt: skip
LONGEST = "N" * (MAX_LOREBOOK_NAME - 1) + "Z"  # its last character shows it was kept whole


@pytest.mark.parametrize("document", [UNTITLED_WORLD_INFO, UNTITLED_BOOK])
def test_a_name_as_long_as_the_limit_is_kept_whole(document: bytes) -> None:
    book, _ = read_lorebook_document(document, name=LONGEST)
    assert book.name == LONGEST


@pytest.mark.parametrize("document", [UNTITLED_WORLD_INFO, UNTITLED_BOOK])
def test_a_longer_name_is_refused_naming_the_limit(document: bytes) -> None:
    with pytest.raises(InvalidArgument) as refused:
        read_lorebook_document(document, name=LONGEST + "!")
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.field == "name"
    assert str(refused.value) == f"name is longer than {MAX_LOREBOOK_NAME} characters"


def test_a_files_own_long_title_is_still_cut() -> None:
    titled = json.dumps({"name": "T" * 150, "entries": {"0": ENTRY}}).encode()
    book, _ = read_lorebook_document(titled, name="ignored")
    assert book.name == "T" * MAX_LOREBOOK_NAME


def _titled(kind: str, title: str) -> bytes:
    """A world info file, a bare book or a card whose book has its own `title`."""
    entry = {"keys": ["bridge"], "content": "The bridge is old.", "enabled": True,
             "insertion_order": 100}  # fmt: skip
    if kind == "world info":
        return json.dumps({"name": title, "entries": {"0": ENTRY}}).encode()
    book = {"name": title, "entries": [entry]}
    if kind == "book":
        return json.dumps({"spec": "lorebook_v3", "data": book}).encode()
    card = json.loads(CARD)
    card["data"]["character_book"] = book
    return json.dumps(card).encode()


@pytest.mark.parametrize("kind", ["world info", "book", "card"])
@pytest.mark.parametrize("ending", ["👍🏽", "e\u0301", "🇫🇷", "👨\u200d👩\u200d👧"])
def test_a_files_own_title_is_cut_between_characters_as_a_reader_sees_them(
    kind: str, ending: str
) -> None:
    """The last character the limit reaches into is left out whole (review: a skin tone, an
    accent was cut off it, as `/lorebook import` already avoids for a file's name)."""
    before = "T" * (MAX_LOREBOOK_NAME - 1)
    book, _ = read_lorebook_document(_titled(kind, before + ending + "!"))
    assert book.name == before


TITLED_WORLD_INFO = json.dumps({"name": "Haunts", "entries": {"0": ENTRY}}).encode()
TITLED_BOOK = json.dumps({"spec": "lorebook_v3", "data": {"name": "Haunts", "entries": [
    {"keys": ["bridge"], "content": "The bridge is old.", "enabled": True,
     "insertion_order": 100},
]}}).encode()  # fmt: skip
CARD = json.dumps({"spec": "chara_card_v2", "spec_version": "2.0", "data": {
    "name": "Haunts", "description": "", "personality": "", "scenario": "", "first_mes": "",
    "mes_example": "", "character_book": {"entries": [
        {"keys": ["bridge"], "content": "The bridge is old.", "enabled": True,
         "insertion_order": 100},
    ]},
}}).encode()  # fmt: skip


@pytest.mark.parametrize("document", [TITLED_WORLD_INFO, TITLED_BOOK, CARD])
def test_a_long_name_a_titled_file_does_not_use_is_not_refused(document: bytes) -> None:
    book, _ = read_lorebook_document(document, name=LONGEST + "!")
    assert book.name != LONGEST + "!"
    assert len(book.name) <= MAX_LOREBOOK_NAME


class Stored(Exception):
    pass


class Beyond:
    def __getattr__(self, name: str) -> Any:
        def reached(*args: Any, **kwargs: Any) -> Any:
            raise Stored(name, *args)

        return reached


class Checks(LorebookAdmin):
    def __init__(self) -> None:  # the checks only; the store is `Stored`
        beyond: Any = Beyond()
        self._db = self._store = self._gateway = beyond


ALICE = Principal(
    User("u1", "1", "Alice", "UTC", superuser=False, nsfw_verified=False,
         created_at=datetime.now(UTC))
)  # fmt: skip


async def test_import_refuses_a_long_name_before_storing_and_stores_one_as_long_as_the_limit() -> (
    None
):
    with pytest.raises(InvalidArgument, match=f"longer than {MAX_LOREBOOK_NAME} characters"):
        await Checks().import_lorebook(ALICE, UNTITLED_WORLD_INFO, LONGEST + "!", None)
    with pytest.raises(Stored, match="create_lorebook") as stored:
        await Checks().import_lorebook(ALICE, UNTITLED_WORLD_INFO, f"  {LONGEST}  ", None)
    book = stored.value.args[1]
    assert book.name == LONGEST  # spaces around it aside


async def test_import_of_a_titled_file_stores_it_whatever_name_came_with_it() -> None:
    with pytest.raises(Stored, match="create_lorebook") as stored:
        await Checks().import_lorebook(ALICE, TITLED_WORLD_INFO, "N" * 500, None)
    assert stored.value.args[1].name == "Haunts"
