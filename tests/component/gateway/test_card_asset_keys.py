"""A CHARX asset at the path `avatar` on real Postgres: it is kept apart from the card picture
(stored under the picture's key it was overwritten by the picture, or became "the picture"
that no export could read), so export then import gives the card back with it, and the
owner's data export still works. Assets stored before they had their own keys still read."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.admin.cards import AVATAR_ASSET
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.testing.cards import card_v3, charx_card, picture

from .conftest import ALICE, FakeKeyVault, FakeMemory

pytestmark = pytest.mark.component

ICON = "assets/icon/images/main.png"
NOT_AN_IMAGE = b"not an image"


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


def charx_with_avatar_asset(*, with_picture: bool) -> bytes:
    card = card_v3("Zed")
    assets = [
        {"type": "other", "uri": "embeded://avatar", "name": "x", "ext": "bin"},
        {"type": "other", "uri": "embeded://notes.txt", "name": "n", "ext": "txt"},
    ]
    files = {"avatar": NOT_AN_IMAGE, "notes.txt": b"hi"}
    if with_picture:
        assets.insert(0, {"type": "icon", "uri": f"embeded://{ICON}", "name": "main", "ext": "png"})
        files[ICON] = picture("green", (24, 24))
    card["data"]["assets"] = assets
    return charx_card(card, files)


def opened(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        return {name: zipped.read(name) for name in zipped.namelist()}


@pytest.mark.parametrize("with_picture", [True, False])
async def test_an_asset_named_avatar_is_kept_apart_from_the_picture(
    admin: Admin, gateway: Gateway, with_picture: bool
) -> None:
    alice = Principal(await gateway.user(ALICE))
    await admin.import_card(alice, charx_with_avatar_asset(with_picture=with_picture))

    contents = await admin.card_contents(alice, "zed")
    assert contents.assets == {"avatar": NOT_AN_IMAGE, "notes.txt": b"hi"}
    assert (contents.picture is not None) == with_picture
    for fmt in ("png", "json", "charx"):
        await admin.export_card(alice, "zed", fmt)  # none of them refused
    charx, _, _ = await admin.export_card(alice, "zed", "charx")
    assert opened(charx)["avatar"] == NOT_AN_IMAGE

    again = await admin.import_card(alice, charx)  # export then import: the same assets
    assert again.personality.slug == "zed"
    assert (await admin.card_contents(alice, "zed")).assets == contents.assets

    files = opened((await admin.export_user_data(alice)).archive)
    assert opened(files["cards/zed.charx"])["avatar"] == NOT_AN_IMAGE


async def test_assets_stored_at_their_bare_paths_still_read(
    admin: Admin, gateway: Gateway, engine: AsyncEngine
) -> None:
    """Before assets had their own keys: an asset at its bare path, and one at `avatar` that
    took the picture's key (its bytes are no picture: export leaves the picture out and
    gives the asset back)."""
    alice = Principal(await gateway.user(ALICE))
    await admin.import_card(alice, charx_with_avatar_asset(with_picture=False))
    c = t.personality_assets.c
    async with engine.begin() as conn:  # the rows as they were stored before
        personality_id = str(
            await conn.scalar(
                sa.select(t.personalities.c.id).where(t.personalities.c.slug == "zed")
            )
        )
        await conn.execute(
            sa.delete(t.personality_assets).where(c.personality_id == personality_id)
        )
        await conn.execute(
            sa.insert(t.personality_assets),
            [
                {"personality_id": personality_id, "path": path, "content_type": "x", "data": data}
                for path, data in ((AVATAR_ASSET, NOT_AN_IMAGE), ("notes.txt", b"hi"))
            ],
        )

    contents = await admin.card_contents(alice, "zed")
    assert contents.assets == {"notes.txt": b"hi"}
    assert contents.picture == NOT_AN_IMAGE
    charx, _, _ = await admin.export_card(alice, "zed", "charx")
    assert {k: v for k, v in opened(charx).items() if k != "card.json"} == {
        "avatar": NOT_AN_IMAGE,
        "notes.txt": b"hi",
    }
    await admin.export_card(alice, "zed", "png")  # a placeholder picture, not a refusal
    await admin.import_card(alice, charx)
    assert (await admin.card_contents(alice, "zed")).assets == {
        "avatar": NOT_AN_IMAGE,
        "notes.txt": b"hi",
    }
    json.loads(opened((await admin.export_user_data(alice)).archive)["cards/zed.json"])
