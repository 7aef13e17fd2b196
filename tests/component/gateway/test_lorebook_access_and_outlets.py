"""Lorebooks on real Postgres: another user's lorebook is not found (its name is not told to
exist), ImportLorebook's replace and attach are one transaction, and an outlet entry is kept
but not given to a generation (review 142, 11 and 14)."""

from __future__ import annotations

import json
import uuid

import pytest

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.cards.lorebooks import Lorebook, LoreEntry
from tzurot.gateway.domain import Actor
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.store import lorebooks as lorebook_store
from tzurot.runtime.errors import NotFound

from .conftest import ALICE, FakeKeyVault, FakeMemory

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")


@pytest.fixture
def admin(
    gateway: Gateway, store: GatewayStore, memory: FakeMemory, keyvault: FakeKeyVault
) -> Admin:
    return Admin(
        gateway=gateway,
        store=store,
        memory=memory,
        keyvault=keyvault,
        operator_identities=frozenset({"cli"}),
    )


def _world_info(content: str) -> bytes:
    entry = {"uid": 0, "key": ["raven"], "content": content, "constant": True}
    return json.dumps({"entries": {"0": entry}}).encode()


async def test_another_users_lorebook_is_not_found(admin: Admin, gateway: Gateway) -> None:
    alice = Principal(await gateway.user(ALICE))
    bob = Principal(await gateway.user(BOB))
    mine, _ = await admin.import_lorebook(alice, _world_info("Ravens."), "Secret Plans", None)
    for ref in ("Secret Plans", mine.id):
        with pytest.raises(NotFound) as caught:
            await admin.export_lorebook(bob, ref, "lorebook_v3")
        assert caught.value.reason == "LOREBOOK_NOT_FOUND"
        with pytest.raises(NotFound) as caught:
            await admin.delete_lorebook(bob, ref)
        assert caught.value.reason == "LOREBOOK_NOT_FOUND"
    with pytest.raises(NotFound) as absent:
        await admin.export_lorebook(bob, "No Such Book", "lorebook_v3")
    assert absent.value.reason == "LOREBOOK_NOT_FOUND"
    superuser = Principal(None)
    for who in (superuser, alice):
        _, filename = await admin.export_lorebook(who, "Secret Plans", "lorebook_v3")
        assert filename == "secret-plans.json"


async def test_a_replace_whose_attach_fails_leaves_the_book_as_it_was(
    admin: Admin, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = Principal(await gateway.user(ALICE))
    first, _ = await admin.import_lorebook(alice, _world_info("Before."), "Tavern", None)

    async def failing_attach(*args: object) -> None:
        raise RuntimeError("the attachment fails")

    monkeypatch.setattr(lorebook_store, "_attach", failing_attach)
    with pytest.raises(RuntimeError):
        await admin.import_lorebook(
            alice,
            _world_info("After."),
            "Tavern",
            ("channel", "chan-1"),
            replace_ref=first.id,
            manage_channels=True,
        )
    monkeypatch.undo()
    kept = await admin._db.get_lorebook(first.id)
    assert kept is not None
    assert [entry.content for entry in kept.book.entries] == ["Before."]
    assert kept.attachments == ()

    replaced, _ = await admin.import_lorebook(
        alice,
        _world_info("After."),
        "Tavern",
        ("channel", "chan-1"),
        replace_ref=first.id,
        manage_channels=True,
    )
    assert [entry.content for entry in replaced.book.entries] == ["After."]
    assert replaced.attachments == (("channel", "chan-1"),)


async def test_an_outlet_entry_is_kept_but_not_in_play(admin: Admin, store: GatewayStore) -> None:
    book = Lorebook(
        name="Outlets",
        entries=[
            LoreEntry(uid="0", keys=["a"], content="placed", constant=True),
            LoreEntry(
                uid="1",
                keys=["a"],
                content="outlet only",
                constant=True,
                extensions={"position": 7, "outletName": "x"},
            ),
        ],
    )
    book_id = await admin._db.create_lorebook(book, None, ("global", ""))
    context = await store.lore_context(str(uuid.uuid4()), "chan-1")
    assert [entry.content for entry in context.books[0][1].book.entries] == ["placed"]
    stored = await admin._db.get_lorebook(book_id)
    assert stored is not None
    assert [entry.content for entry in stored.book.entries] == ["placed", "outlet only"]
