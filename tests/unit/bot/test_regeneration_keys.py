"""The key each 🔄 asks under (AnswerBook.next_regeneration): `<key>#regen<n>.<token>`, never
one asked before, by this bot process or an earlier one (the gateway would answer it with its
job's stored failure); two quick 🔄s are one job; within the gateway's length for a key."""

from __future__ import annotations

import itertools
import re

from tzurot.bot.answers import AnswerBook
from tzurot.gateway.admin.base import MAX_NAME
from tzurot.gateway.gateway_core import MAX_ID_CHARS


def numbered() -> AnswerBook:
    """A book whose 🔄 tokens read t1, t2, … in the order asked."""
    tokens = (f"t{n}" for n in itertools.count(1))
    return AnswerBook(10, token=lambda: next(tokens))


def asked(book: AnswerBook, key: str) -> str:
    """The key of a 🔄 of the answer asked under `key`, asked and ended."""
    new = book.next_regeneration(key)
    book.regeneration_ended(new)
    return new


def test_each_regeneration_gets_a_key_not_used_before() -> None:
    book = numbered()
    assert asked(book, "1:lilith") == "1:lilith#regen1.t1"
    assert asked(book, "1:lilith") == "1:lilith#regen2.t2"  # #regen1 failed
    assert asked(book, "1:lilith#regen2.t2") == "1:lilith#regen3.t3"
    assert asked(book, "1:sage") == "1:sage#regen1.t4"


def test_the_answers_own_count_is_read_whatever_its_key_looks_like() -> None:
    """An earlier process's 🔄 (with its token) or one from before tokens (none)."""
    book = numbered()
    assert asked(book, "1:lilith#regen7.0a1b2c3d4e5f") == "1:lilith#regen8.t1"
    assert asked(book, "2:lilith#regen7") == "2:lilith#regen8.t2"
    assert asked(book, "3:lilith#regen") == "3:lilith#regen1.t3"


def test_a_regeneration_after_a_restart_is_not_one_asked_before() -> None:
    """A new bot process remembers no 🔄: its first one of an answer is numbered as the
    earlier process's first was, and still asks under a key of its own."""
    before = AnswerBook(10).next_regeneration("1:lilith")
    after = AnswerBook(10).next_regeneration("1:lilith")
    assert re.fullmatch(r"1:lilith#regen1\.[0-9a-f]{12}", before)
    assert re.fullmatch(r"1:lilith#regen1\.[0-9a-f]{12}", after)
    assert after != before


def test_a_regeneration_whose_count_was_forgotten_is_not_one_asked_before() -> None:
    """The book keeps counts for `capacity` answers: past them, a 🔄 numbered again as an
    earlier one of this process was still has a key of its own."""
    book = AnswerBook(1)
    first = asked(book, "1:lilith")
    asked(book, "2:lilith")  # 1:lilith's count forgotten
    again = asked(book, "1:lilith")
    assert again.startswith("1:lilith#regen1.")
    assert again != first


def test_a_regeneration_asked_while_one_is_made_is_the_same_job() -> None:
    book = numbered()
    first = book.next_regeneration("1:lilith")
    assert book.next_regeneration("1:lilith") == first  # two quick 🔄s: one job
    # So is a 🔄 of its answer's older key, as another bot process's answer reads it.
    assert book.next_regeneration("1:lilith#regen4.abc") == first
    book.regeneration_ended("1:lilith#regen1.other")  # not the one being made: no end
    assert book.next_regeneration("1:lilith") == first
    book.regeneration_ended(first)
    assert book.next_regeneration("1:lilith") == "1:lilith#regen2.t2"


def test_the_longest_regeneration_key_is_within_the_gateways_limit() -> None:
    """A message's id (20 digits at most) and a personality's name (its slug, 63, or its
    display name), a millionth 🔄 of it."""
    base = f"{'9' * 20}:{'n' * MAX_NAME}"
    book = AnswerBook(10)
    key = book.next_regeneration(f"{base}#regen999999.0a1b2c3d4e5f")
    assert key.startswith(f"{base}#regen1000000.")
    assert len(key) <= MAX_ID_CHARS
