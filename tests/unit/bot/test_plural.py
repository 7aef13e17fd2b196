"""Counts in the commands' replies: one is singular ("1 entry", never "1 entries")."""

from __future__ import annotations

import pytest

from tzurot.bot.commands import render
from tzurot.bot.commands.freewill import switched_on_text
from tzurot.bot.commands.lorebooks import imported_text
from tzurot.bot.commands.voice import render_preference
from tzurot.bot.commands.words import plural
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


@pytest.mark.parametrize(
    ("count", "said"), [(0, "0 entries"), (1, "1 entry"), (2, "2 entries"), (-1, "-1 entries")]
)
def test_plural_is_singular_for_one_only(count: int, said: str) -> None:
    assert plural(count, "entry", "entries") == said


def test_plural_adds_s_unless_told_and_separates_thousands_when_asked() -> None:
    assert plural(1, "sample") == "1 sample"
    assert plural(3, "sample") == "3 samples"
    assert plural(1, "history turn") == "1 history turn"
    assert plural(1200, "character", sep=",") == "1,200 characters"
    assert plural(1, "character", sep=",") == "1 character"


def test_a_lorebook_of_one_entry_is_imported_as_one_entry() -> None:
    one = gw.ImportLorebookResponse(lorebook=common.Lorebook(name="moor", entry_count=1))
    assert imported_text(one, attached=True, replaced=False) == "Imported **moor** (1 entry)."
    two = gw.ImportLorebookResponse(lorebook=common.Lorebook(name="moor", entry_count=2))
    assert imported_text(two, attached=True, replaced=True) == "Replaced **moor** (2 entries)."
    listed = render.lorebooks([common.Lorebook(id="b1", name="moor", entry_count=1)])
    assert listed == "**moor** (1 entry) `b1`: not attached"


def test_one_of_a_kind_is_singular_in_usage_memories_voice_and_free_will() -> None:
    usage = render.usage(
        gw.GetUsageResponse(
            totals=[
                gw.UsageTotal(
                    provider="openai", model="t", requests=1, characters=1, request_type="speech"
                ),
                gw.UsageTotal(provider="openrouter", model="i", requests=2, images=1),
            ]
        ),
        "day",
    )
    assert "- `openai/t` (speech): 1 request, 1 character\n" in usage
    assert "- `openrouter/i`: 2 requests, 0 in / 0 out tokens, 1 image\n" in usage
    assert usage.endswith(", 1 character of speech")
    stats = render.memory_stats(gw.GetMemoryStatsResponse(total=1), "Lilith")
    assert stats.startswith("Lilith has 1 memory of you")
    assert render_preference(gw.SetVoicePreferenceResponse(character_limit=1)).endswith(
        "up to 1 character."
    )
    now = gw.FreeWillStatus(
        personality=common.Personality(display_name="Lilith"),
        enabled=True,
        daily_budget=1,
        quiet_hours="23-8",
        timezone="UTC",
    )
    assert "at most 1 time a day, never during 23-8 (UTC)" in switched_on_text(None, now)
