"""The data export on real Postgres holds what `/character export format:charx` gives for each
personality the user owns: a personality imported from a CHARX keeps the card's other assets,
and its CHARX card (`cards/<slug>.charx`, listed as `charx` in `personalities_owned.json`)
carries them, byte for byte, and imports again with them. It is a file like the pictures: one
that does not fit part 1 comes in a later part."""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

import pytest

from tzurot.gateway.admin import Admin, Principal, privacy
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.testing.cards import card_v3, charx_card, picture

from .conftest import ALICE, FakeKeyVault, FakeMemory

pytestmark = pytest.mark.component

ICON = "assets/icon/images/main.png"
ASSETS = {
    "assets/emotion/images/happy.png": picture("yellow", (20, 20)),
    "assets/other/notes.bin": os.urandom(30_000),  # does not compress
}


@pytest.fixture
def admin(
    gateway: Gateway, store: GatewayStore, memory: FakeMemory, keyvault: FakeKeyVault
) -> Admin:
    """Avatars are served (a public URL), as in production."""
    return Admin(
        gateway=gateway,
        store=store,
        memory=memory,
        keyvault=keyvault,
        operator_identities=frozenset({"cli"}),
        public_url="https://tzurot.example",
    )


def charx_with_assets(name: str) -> bytes:
    """A CHARX card: its main icon and two other assets (an emotion picture, a file)."""
    card = card_v3(name)
    card["data"]["assets"] = [
        {"type": "icon", "uri": f"embeded://{ICON}", "name": "main", "ext": "png"},
        {"type": "emotion", "uri": "embeded://assets/emotion/images/happy.png", "name": "happy",
         "ext": "png"},
        {"type": "other", "uri": "embeded://assets/other/notes.bin", "name": "notes",
         "ext": "bin"},
    ]  # fmt: skip
    return charx_card(card, {ICON: picture("green", (24, 24)), **ASSETS})


def opened(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        return {name: zipped.read(name) for name in zipped.namelist()}


def owned(files: dict[str, bytes], slug: str) -> dict[str, Any]:
    (row,) = [p for p in json.loads(files["personalities_owned.json"]) if p["slug"] == slug]
    assert isinstance(row, dict)
    return row


async def test_her_charx_personality_is_in_her_export_as_a_charx_with_its_assets(
    admin: Admin, gateway: Gateway
) -> None:
    alice = Principal(await gateway.user(ALICE))
    await admin.import_card(alice, charx_with_assets("Nova"))
    await admin.import_card(alice, json.dumps(card_v3("Wren")).encode())

    files = opened((await admin.export_user_data(alice)).archive)

    nova = owned(files, "nova")
    assert nova["card_file"] == "cards/nova.json"
    charx = files["cards/nova.charx"]
    assert nova["charx"] == {
        "assets": sorted(ASSETS),
        "size_bytes": len(charx),
        "file": "cards/nova.charx",
        "part": 1,
    }
    inside = opened(charx)
    assert {path: inside[path] for path in ASSETS} == ASSETS
    # What `/character export format:charx` gives (its zip's dates aside).
    exported, _, _ = await admin.export_card(alice, "nova", "charx")
    assert inside == opened(exported)
    # A personality without assets beyond its picture: its JSON card is all it needs.
    assert owned(files, "wren")["charx"] is None
    assert not any(name.endswith(".charx") for name in set(files) - {"cards/nova.charx"})
    readme = files["README.txt"].decode()
    assert "Import the .charx with /character import" in readme

    # It imports again, its assets kept.
    again = await admin.import_card(alice, charx)
    assert (again.created, again.personality.slug) == (False, "nova")
    assert (await admin.card_contents(alice, "nova")).assets == ASSETS


async def test_a_charx_that_part_1_cannot_carry_comes_in_part_2(
    admin: Admin, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = Principal(await gateway.user(ALICE))
    await admin.import_card(alice, charx_with_assets("Nova"))
    whole = await admin.export_user_data(alice)
    charx = opened(whole.archive)["cards/nova.charx"]
    # Room for the CHARX alone, not beside her JSON: it waits for part 2.
    limit = len(charx) + 4096
    assert limit < len(whole.archive)
    monkeypatch.setattr(privacy, "MAX_ARCHIVE_BYTES", limit)

    first = await admin.export_user_data(alice)
    second = await admin.export_user_data(alice, part=2)

    assert (first.parts, second.part) == (2, 2)
    one, two = opened(first.archive), opened(second.archive)
    row = owned(one, "nova")["charx"]
    assert (row["file"], row["omitted"], row["part"], row["part_file"]) == (
        None,
        "size limit",
        2,
        "cards/nova.charx",
    )
    assert "cards/nova.charx" not in one
    assert "1 audio, image or CHARX files did not fit" in one["README.txt"].decode()
    assert set(two) == {"manifest.json", "README.txt", "cards/nova.charx"}
    assert two["cards/nova.charx"] == charx
    assert json.loads(two["manifest.json"])["files"] == {
        "cards/nova.charx": "listed in personalities_owned.json (part 1)"
    }
