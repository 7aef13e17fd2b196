"""`/character alias remove` names the alias the personality holds, matched as the gateway
matches aliases (case, whitespace, a leading '@'), and says which aliases it has otherwise."""

from __future__ import annotations

from tzurot.bot.commands.character_aliases import added_text, held_alias, not_held_text
from tzurot.v1 import common_pb2 as common

QUILL = common.Personality(display_name="Quill", aliases=["The Scribe", "quilly"])


def test_an_alias_is_matched_as_the_gateway_matches_it() -> None:
    assert held_alias(QUILL, "@the   SCRIBE ") == "The Scribe"
    assert held_alias(QUILL, "scribe") is None


def test_the_texts_name_the_aliases() -> None:
    assert added_text(QUILL, "@quilly") == (
        "`@quilly` now means **Quill** for everyone. Its aliases: `@The Scribe`, `@quilly`."
    )
    assert not_held_text(common.Personality(display_name="Ink"), "lil") == (
        "`@lil` is not an alias of **Ink** (its aliases: none)."
    )
