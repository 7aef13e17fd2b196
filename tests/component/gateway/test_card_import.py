"""Character card import on real Postgres: the event loop keeps serving while a large card is
read, a large picture still becomes a served avatar, a name in another script gets a slug,
and two users importing one new slug at once cannot both win."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.admin.cards import MAX_EXPORT_BYTES
from tzurot.gateway.cards import codec, pictures
from tzurot.gateway.domain import Actor
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import InvalidArgument, PermissionDenied
from tzurot.testing.cards import card_v3, charx_card, photo

from .conftest import ALICE, FakeKeyVault, FakeMemory

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
PUBLIC_URL = "https://tzurot.example"
ICON = "assets/icon/images/main.jpg"


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
        public_url=PUBLIC_URL,
    )


@pytest.fixture(scope="module")
def large_icon_card() -> bytes:
    """A CHARX whose main icon is a 4096 px JPEG (3 MB; over 20 MB as a PNG)."""
    card = card_v3("Mossman")
    card["data"]["assets"] = [
        {"type": "icon", "uri": f"embeded://{ICON}", "name": "main", "ext": "jpg"}
    ]
    return charx_card(card, {ICON: photo(4096)})


async def test_the_event_loop_serves_while_a_card_is_read(
    admin: Admin, gateway: Gateway, large_icon_card: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading = threading.Event()
    served = threading.Event()
    seen_served: list[bool] = []
    read = codec.decode

    def held_read(document: bytes, **kwargs: Any) -> codec.DecodedCard:
        reading.set()
        # Waits (a bounded while, so a blocked loop fails the test instead of hanging it)
        # for the coroutine below, which can only run if the loop is free.
        seen_served.append(served.wait(timeout=10))
        return read(document, **kwargs)

    monkeypatch.setattr(codec, "decode", held_read)

    async def another_call() -> None:
        await asyncio.to_thread(reading.wait, 10)
        served.set()

    alice = Principal(await gateway.user(ALICE))
    imported, _ = await asyncio.gather(admin.import_card(alice, large_icon_card), another_call())
    assert seen_served == [True]
    assert imported.created


async def test_a_large_icon_card_gets_a_served_avatar_and_exports(
    admin: Admin, gateway: Gateway, large_icon_card: bytes
) -> None:
    alice = Principal(await gateway.user(ALICE))
    imported = await admin.import_card(alice, large_icon_card)
    slug = imported.personality.slug
    assert imported.personality.avatar_url.startswith(f"{PUBLIC_URL}/avatars/{slug}.png?v=")
    assert imported.warnings == ()
    content_type, avatar = await admin.get_avatar(f"{slug}.png")
    assert content_type == "image/png"
    assert len(avatar) <= pictures.MAX_BYTES
    assert max(Image.open(io.BytesIO(avatar)).size) <= pictures.MAX_SIDE
    for fmt in ("png", "charx", "json"):
        document, _, _ = await admin.export_card(alice, slug, fmt)
        assert len(document) <= MAX_EXPORT_BYTES


async def test_a_card_whose_export_would_not_fit_a_message_is_refused(
    admin: Admin, gateway: Gateway
) -> None:
    # 7 MB of greeting (character fields stop at 64,000 characters): the PNG export carries
    # it twice in base64 (over 18 MB).
    card = card_v3("Breen", first_mes="x" * 7_000_000)
    alice = Principal(await gateway.user(ALICE))
    with pytest.raises(InvalidArgument) as caught:
        await admin.import_card(alice, json.dumps(card).encode())
    assert (caught.value.field, caught.value.reason) == ("document", "CARD_TOO_LARGE")
    assert "PNG" in caught.value.message
    assert await admin._store.find_personality("breen") is None


async def test_a_name_in_another_script_imports_with_a_derived_slug(
    admin: Admin, gateway: Gateway
) -> None:
    alice = Principal(await gateway.user(ALICE))
    first = await admin.import_card(alice, json.dumps(card_v3("Алиса")).encode())
    assert first.created
    assert first.personality.slug.startswith("char-")
    again = await admin.import_card(
        alice, json.dumps(card_v3("алиса", system_prompt="Again.")).encode()
    )
    assert (again.created, again.personality.id) == (False, first.personality.id)
    found = await admin._store.find_personality("Алиса")
    assert found is not None
    assert found.system_prompt == "Again."


def hold_both(store: GatewayStore, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Holds each import at the store until two have arrived; returns how many did."""
    arrived: list[None] = []
    both = asyncio.Event()
    original = store.import_personality

    async def held(*args: Any, **kwargs: Any) -> Any:
        arrived.append(None)
        if len(arrived) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), timeout=10)
        return await original(*args, **kwargs)

    monkeypatch.setattr(store, "import_personality", held)
    return lambda: len(arrived)


async def test_two_users_importing_one_new_slug_at_once_cannot_both_win(
    admin: Admin, gateway: Gateway, store: GatewayStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrivals = hold_both(store, monkeypatch)
    alice = Principal(await gateway.user(ALICE))
    bob = Principal(await gateway.user(BOB))
    cards = {
        who.user_id: json.dumps(card_v3("Mossman", system_prompt=f"Prompt of {name}.")).encode()
        for who, name in ((alice, "Alice"), (bob, "Bob"))
    }
    outcomes = await asyncio.gather(
        admin.import_card(alice, cards[alice.user_id]),
        admin.import_card(bob, cards[bob.user_id]),
        return_exceptions=True,
    )
    assert arrivals() == 2  # both were past the card's reading, at the store, together
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert (len(won), len(lost)) == (1, 1), outcomes
    assert isinstance(lost[0], PermissionDenied)
    assert lost[0].reason == "NOT_OWNER"
    winner = won[0].personality
    stored = await store.find_personality("mossman")
    assert stored is not None
    name = "Alice" if winner.owner_user_id == alice.user_id else "Bob"
    assert stored.system_prompt == f"Prompt of {name}."  # not overwritten by the loser
    book = await admin._db.card_lorebook(stored.id)
    assert book is not None
    assert book.owner_user_id == winner.owner_user_id
