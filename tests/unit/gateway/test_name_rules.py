"""The name rules' collation-free filter (`key_pattern`): every display name whose
`mention_key` or normalized text contains a key is found, whatever its case and script; and
who counts as one owner (`Owners`)."""

from __future__ import annotations

import re
import sys

import pytest

from tzurot.gateway.personalities import mention_key, normalize_alias
from tzurot.gateway.store.name_lookups import LOWERED_FROM, Owners, key_pattern


def test_the_characters_lowered_to_another_case_pair_are_all_listed() -> None:
    """`_char_class` takes a character's `upper()` and `title()`; `LOWERED_FROM` the rest of
    what `str.lower()` turns into it (read from this Python's Unicode database)."""
    missing: dict[str, set[str]] = {}
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        lowered = char.lower()
        if lowered == char:
            continue
        first = lowered[0]
        if char not in {first.upper(), first.title()} and char not in LOWERED_FROM.get(first, ""):
            missing.setdefault(first, set()).add(char)
    assert missing == {}


NAMES = (
    "Мира",
    "МИРА Вторая",
    "ΣΟΦΊΑΣ",
    "Σοφία",
    "İstanbul",
    "✨Luna✨",
    "Dr. Who?",
    "Sage\u00a0 🌙",
    "KELVIN \u212a",
    "a]b\\c-d^e[f",
    "ẞtraße",
)


@pytest.mark.parametrize("name", NAMES)
def test_a_name_is_found_by_its_key_and_its_text(name: str) -> None:
    """Postgres' `~` reads these bracket expressions as Python's `re` does."""
    for key in (mention_key(name), normalize_alias(name)):
        assert re.search(key_pattern(key), name), (name, key, key_pattern(key))
        words = key.split(" ")
        for end in range(1, len(words) + 1):  # and by the names it begins with
            assert re.search(key_pattern(" ".join(words[:end])), name), (name, words[:end])


def test_other_names_are_not_found() -> None:
    assert not re.search(key_pattern("мира"), "Мирон")
    assert not re.search(key_pattern("sage please"), "Sage")
    assert re.search(key_pattern("sage please"), "Sage, please")  # read again in Python


def test_the_operators_personalities_are_one_owners() -> None:
    operator = Owners("op")
    assert operator.same(None, "op")
    assert operator.same("op", None)
    assert operator.same("alice", "alice")
    assert not operator.same("alice", None)
    assert not operator.same("alice", "op")
    alone = Owners(None)
    assert alone.same(None, None)
    assert not alone.same(None, "op")
