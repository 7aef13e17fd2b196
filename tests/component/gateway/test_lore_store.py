"""Lorebooks, their attachments and each conversation's lore state in real Postgres."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway.cards.lorebooks import Lorebook, LoreEntry
from tzurot.gateway.lore import LoreState, TimedEffect
from tzurot.gateway.store import AdminStore, GatewayStore

from .conftest import seed

pytestmark = pytest.mark.component


def book(name: str, *keys: str) -> Lorebook:
    return Lorebook(
        name=name,
        scan_depth=3,
        entries=[LoreEntry(uid=str(i), keys=[k], content=f"about {k}") for i, k in enumerate(keys)],
    )


async def test_lore_in_play_comes_by_scope_and_the_state_outlives_the_store(
    engine: AsyncEngine, store: GatewayStore
) -> None:
    personality, _ = await store.import_personality(seed("lilith"), owner_user_id=None)
    other, _ = await store.import_personality(seed("sage"), owner_user_id=None)
    admin = AdminStore(engine, store.catalog)
    assert (await store.lore_context(personality.id, "chan-1")).books == ()

    everywhere = await admin.create_lorebook(book("world", "sun"), None, ("global", ""))
    here = await admin.create_lorebook(book("tavern", "ale"), None, ("channel", "chan-1"))
    hers = await admin.create_lorebook(
        book("lilith", "night"), None, ("personality", personality.id)
    )
    await admin.create_lorebook(book("sage's", "owl"), None, ("personality", other.id))
    await admin.create_lorebook(book("elsewhere", "sea"), None, ("channel", "chan-2"))
    await admin.attach_lorebook(hers, "channel", "chan-1")  # in play twice: listed once

    context = await store.lore_context(personality.id, "chan-1")
    assert [(scope, b.id) for scope, b in context.books] == [
        ("channel", here),
        ("channel", hers),
        ("global", everywhere),
    ]
    assert context.books[0][1].book.entries[0].keys == ["ale"]
    assert context.state == LoreState()

    state = LoreState(
        message_count=7, effects=(TimedEffect(here, "0", "sticky", 5, 8, protected=False),)
    )
    await store.save_lore_state("chan-1", personality.id, state)
    restarted = GatewayStore(engine)  # a new process: nothing cached
    assert (await restarted.lore_context(personality.id, "chan-1")).state == state
    assert (await restarted.lore_context(other.id, "chan-1")).state == LoreState()

    listed = await admin.list_lorebooks(owner_user_id=None, everything=True, attached=None)
    assert sorted(b.book.name for b in listed) == [
        "elsewhere",
        "lilith",
        "sage's",
        "tavern",
        "world",
    ]
    shown = await admin.get_lorebook(hers)
    assert shown is not None
    assert shown.attachments == (("channel", "chan-1"), ("personality", personality.id))
    assert await admin.detach_lorebook(hers, "channel", "chan-1")
    assert not await admin.detach_lorebook(hers, "channel", "chan-1")
    await admin.delete_lorebook(here)
    context = await store.lore_context(personality.id, "chan-1")
    assert [b.id for _, b in context.books] == [hers, everywhere]
