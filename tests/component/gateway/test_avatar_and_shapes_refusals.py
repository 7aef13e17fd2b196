"""On real Postgres: a shapes.inc backup with values Tzurot would refuse imports, with them
kept aside and a warning each; a card's JPEG or WebP icon is served as an avatar without its
Exif/XMP, and so is one uploaded (`/character avatar`) or downloaded by the shapes.inc import
(admin/avatars.py `clean_avatar`)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from tzurot.cli.shapes_import import read_backup
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import InvalidArgument, NotFound
from tzurot.testing.cards import card_v3, charx_card
from tzurot.testing.shapes_backup import shape_config, write_backup

from .conftest import ALICE, FakeKeyVault, FakeMemory

pytestmark = pytest.mark.component

PUBLIC_URL = "https://tzurot.example"
SERIAL = "SN-4242-SECRET"
LONG = "You are Mira. " * 5_000  # 70,000 characters


@pytest.fixture
def served_admin(
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


def photo_with_gps(kind: str) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.BodySerialNumber] = SERIAL
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (51.0, 28.0, 40.0),
    }
    out = io.BytesIO()
    Image.new("RGB", (96, 48), (200, 30, 30)).save(out, kind, exif=exif, quality=90)
    assert SERIAL.encode() in out.getvalue()
    return out.getvalue()


def assert_served_clean(avatar: bytes) -> None:
    assert SERIAL.encode() not in avatar
    served = Image.open(io.BytesIO(avatar))
    assert dict(served.getexif()) == {}
    assert served.size == (48, 96)  # orientation 6 applied


async def test_a_backup_with_refused_values_imports_them_aside(
    admin: Admin, tmp_path: Path
) -> None:
    config = shape_config(
        name="Orla Finch",
        username="orla-finch",
        aliases=[],
        jailbreak=LONG,
        avatar="https://files.shapes.inc/a b.png",
        voice_id="v" * 201,
    )
    backup = read_backup(write_backup(tmp_path / "orla", config=config).folder)
    for dry_run in (True, False):
        done = await admin.import_shapes(
            Principal(None),
            backup.config,
            aliases=[],
            avatar=b"",
            avatar_type="",
            owner="",
            dry_run=dry_run,
        )
        assert len(done.warnings) == 3, done.warnings
    assert done.personality is not None
    assert done.created
    p = done.personality
    assert (p.system_prompt, p.avatar_url, p.voice_id) == ("", "", "")
    assert p.custom_fields["not_imported"] == {
        "jailbreak": LONG.strip(),
        "avatar": "https://files.shapes.inc/a b.png",
        "voice_id": "v" * 201,
    }
    assert p.character.description.startswith("Mira keeps the Greyhaven light")


@pytest.mark.parametrize("kind", ["JPEG", "WEBP"])
async def test_a_card_icon_is_served_without_its_exif(
    served_admin: Admin, gateway: Gateway, kind: str
) -> None:
    ext = "jpg" if kind == "JPEG" else "webp"
    path = f"assets/icon/images/main.{ext}"
    card = card_v3(f"Mossman {ext}")
    card["data"]["assets"] = [
        {"type": "icon", "uri": f"embeded://{path}", "name": "main", "ext": ext}
    ]
    alice = Principal(await gateway.user(ALICE))
    imported = await served_admin.import_card(alice, charx_card(card, {path: photo_with_gps(kind)}))
    slug = imported.personality.slug
    assert imported.personality.avatar_url.startswith(f"{PUBLIC_URL}/avatars/{slug}.{ext}?v=")
    content_type, avatar = await served_admin.get_avatar(f"{slug}.{ext}")
    assert content_type == f"image/{'jpeg' if kind == 'JPEG' else 'webp'}"
    assert_served_clean(avatar)


@pytest.mark.parametrize("kind", ["JPEG", "WEBP"])
async def test_an_uploaded_avatar_is_served_without_its_exif(
    served_admin: Admin, gateway: Gateway, kind: str
) -> None:
    alice = Principal(await gateway.user(ALICE))
    imported = await served_admin.import_card(
        alice, json.dumps(card_v3(f"Upload {kind.lower()}")).encode()
    )
    slug = imported.personality.slug
    await served_admin.set_avatar(alice, slug, photo_with_gps(kind))
    _, avatar = await served_admin.get_avatar(f"{slug}.{'jpg' if kind == 'JPEG' else 'webp'}")
    assert_served_clean(avatar)


async def test_a_shapes_avatar_is_served_without_its_exif(
    served_admin: Admin, tmp_path: Path
) -> None:
    config = shape_config(name="Orla Finch", username="orla-finch", aliases=[])
    backup = read_backup(write_backup(tmp_path / "orla", config=config).folder)
    done = await served_admin.import_shapes(
        Principal(None),
        backup.config,
        aliases=[],
        avatar=photo_with_gps("JPEG"),
        avatar_type="image/jpeg",
        owner="",
        dry_run=False,
    )
    assert done.personality is not None
    _, avatar = await served_admin.get_avatar("orla-finch.jpg")
    assert_served_clean(avatar)


async def test_an_animated_avatar_too_large_to_re_encode_is_refused(
    served_admin: Admin, gateway: Gateway
) -> None:
    """A few KB of animated WebP on a 2100x2100 canvas (review 158 H1): refused before its
    frames are decoded, the avatar unchanged."""
    frames = [Image.new("RGB", (2100, 2100), (200, 30, 30 + index)) for index in range(2)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    alice = Principal(await gateway.user(ALICE))
    imported = await served_admin.import_card(alice, json.dumps(card_v3("Flicker")).encode())
    with pytest.raises(InvalidArgument, match="2100x2100"):
        await served_admin.set_avatar(alice, imported.personality.slug, out.getvalue())
    with pytest.raises(NotFound):
        await served_admin.get_avatar(f"{imported.personality.slug}.webp")
