"""An import's warnings fit one Discord message: lines are added while the reply stays under
1,900 characters, then "…and N more"; `send` cut at 2,000 in the middle of a line and lost
the gateway's own "N more entries renumbered" (review 160, 7)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tzurot.bot.commands import character, lorebooks
from tzurot.bot.commands.common import MAX_TEXT_WITH_WARNINGS, with_warnings
from tzurot.v1 import gateway_pb2 as gw

WARNINGS = [
    f"lorebook: entry '{'x' * 40}{n}' (A fairly descriptive entry title that is long enough "
    f"ok {n}) had no numeric uid; renumbered '{'x' * 40}{n}' → {n}"
    for n in range(10)
] + ["lorebook: 40 more entries renumbered (a repeated uid, or none that is a number)"]


def lorebook_text(warnings: list[str]) -> str:
    r = gw.ImportLorebookResponse(warnings=warnings)
    r.lorebook.name = "N" * 100
    r.lorebook.entry_count = 50
    return lorebooks.imported_text(r, attached=False, replaced=False)


def card_text(warnings: list[str]) -> str:
    r = gw.ImportPersonalityResponse(warnings=warnings, created=True)
    r.personality.display_name = "D" * 80
    r.personality.slug = "s" * 60
    return character.imported_text(r)


@pytest.mark.parametrize("text_of", [lorebook_text, card_text])
def test_many_warnings_end_in_how_many_more_within_one_message(
    text_of: Callable[[list[str]], str],
) -> None:
    text = text_of(WARNINGS)
    assert len(text) <= MAX_TEXT_WITH_WARNINGS
    lines = text.splitlines()
    shown = [line for line in lines if line.startswith("⚠️ ")]
    assert 0 < len(shown) < len(WARNINGS)
    assert all(line.removeprefix("⚠️ ") in WARNINGS for line in shown)  # none cut short
    assert lines[-1] == f"…and {len(WARNINGS) - len(shown)} more"


@pytest.mark.parametrize("text_of", [lorebook_text, card_text])
def test_a_few_warnings_are_all_shown(text_of: Callable[[list[str]], str]) -> None:
    text = text_of(WARNINGS[:2])
    assert text.splitlines()[1:] == [f"⚠️ {w}" for w in WARNINGS[:2]]


def test_the_limit_is_kept_to_the_character() -> None:
    assert with_warnings("head", ["a" * 10], limit=len("head\n⚠️ aaaaaaaaaa")) == (
        "head\n⚠️ aaaaaaaaaa"
    )
    assert with_warnings("head", ["a" * 11], limit=len("head\n⚠️ aaaaaaaaaa")) == (
        "head\n…and 1 more"
    )
