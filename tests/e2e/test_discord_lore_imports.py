"""Lorebook imports through the fake Discord, the real bot and the whole mesh: what the importer
is told. A regex key inference would refuse to compile is dropped at import, naming the
entry, and the rest of the book imported; a book near the size limit comes back from its own
export; a card or lorebook whose book's uids were renumbered says so, within one message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tzurot.testing.cards import card_v3, png_card, world_info
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakeInteraction

pytestmark = pytest.mark.e2e

BOMB = "(((a{100}){100}){100}){100}"
"""30 characters that compile to 10^8 nodes (about 27 GB): inference never compiles it."""


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    return "\n".join(t for t in interaction.texts() if t)


async def import_book(world: World, filename: str, document: dict[str, Any], **options: str) -> str:
    data = json.dumps(document).encode()
    file = world.discord.upload(world.general, filename, data, "application/json")
    done = await world.discord.slash(
        world.general, world.alice, "lorebook", {"file": file, **options}, subcommand=["import"]
    )
    return await answered(world, done)


async def test_a_bomb_regex_key_is_dropped_at_import_naming_the_entry(world: World) -> None:
    book = world_info(
        cave={"key": ["cave"], "content": "LORE-CAVE: the cave is dark."},
        trap={"key": ["trap", f"/{BOMB}/i", r"/^.{0,2000}$/"], "content": "LORE-TRAP."},
    )
    async with running_bot(world):
        text = await import_book(world, "trap.json", book)
        listed = await world.discord.slash(
            world.general, world.alice, "lorebook", {}, subcommand=["list"]
        )
        shown = await answered(world, listed)
    assert "Imported **trap** (2 entries)" in text
    assert "⚠️ lorebook: entry '1' (trap): dropped the regex key '" in text
    assert "(((a{100}){100}" in text  # the key, to find it by
    assert "expands past 10000 nodes" in text
    assert ".{0,2000}" not in text  # a wide repeat of one character is cheap: kept
    assert "trap" in shown


async def test_many_renumbered_uids_fit_one_message(world: World) -> None:
    title = "A fairly descriptive entry title that is long enough"
    entries = {
        str(n): {"uid": "x" * 40 + str(n), "key": [f"k{n}"], "content": "c", "comment": title}
        for n in range(50)
    }
    async with running_bot(world):
        text = await import_book(world, "many.json", {"entries": entries})
    assert "Imported **many** (50 entries)" in text
    assert len(text) <= 1900
    assert text.splitlines()[-1].startswith("…and ")
    assert all(line.endswith(tuple("0123456789")) for line in text.splitlines()[1:-1])


async def test_a_near_limit_lorebook_comes_back_from_its_own_export(world: World) -> None:
    content = "x" * 1950
    entries = {f"e{n}": {"key": [f"key{n}"], "content": content} for n in range(2000)}
    book = world_info(**entries)  # 3.9 MB of text, within 4 MB as a file too
    assert len(json.dumps(book)) < 4 * 1024 * 1024
    async with running_bot(world):
        first = await import_book(world, "huge.json", book)
        assert "Imported **huge** (2000 entries)" in first
        exported = await world.discord.slash(
            world.general,
            world.alice,
            "lorebook",
            {"lorebook": "huge", "format": "lorebook_v3"},
            subcommand=["export"],
        )
        await answered(world, exported)
        (document,) = exported.files
        assert len(document) > 4 * 1024 * 1024  # larger than the book, as a file
        file = world.discord.upload(world.general, "huge.json", document, "application/json")
        again = await world.discord.slash(
            world.general,
            world.alice,
            "lorebook",
            {"file": file, "replace": "huge"},
            subcommand=["import"],
        )
        text = await answered(world, again)
    assert "Replaced **huge** (2000 entries)" in text


async def test_a_card_import_says_which_lore_uids_were_renumbered(world: World) -> None:
    card = card_v3(name="Vortigaunt")
    entries = card["data"]["character_book"]["entries"]
    for entry in entries:
        entry["id"] = 5  # every entry the same id
    entries[-1]["comment"] = "the second"
    async with running_bot(world):
        file = world.discord.upload(
            world.general, "vort.png", png_card(card, color="green"), "image/png"
        )
        done = await world.discord.slash(
            world.general, world.alice, "character", {"card": file}, subcommand=["import"]
        )
        text = await answered(world, done)
    assert "Imported **Vortigaunt**" in text
    assert "⚠️ lorebook: entry '5' (the second) repeats an earlier entry's uid; renumbered" in text


async def test_a_lorebook_import_says_which_uids_were_renumbered(world: World) -> None:
    book = {
        "entries": {
            "a": {"uid": 7, "key": ["cave"], "content": "LORE-CAVE", "comment": "Cave"},
            "b": {"uid": 7, "key": ["tunnel"], "content": "LORE-TUNNEL", "comment": "Tunnel"},
        }
    }
    async with running_bot(world):
        text = await import_book(world, "caves.json", book)
    assert "Imported **caves** (2 entries)" in text
    assert "⚠️ lorebook: entry '7' (Tunnel) repeats an earlier entry's uid; renumbered" in text
