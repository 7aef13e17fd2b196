"""The data export on real Postgres: the pictures of the personalities a user owns are files
of the archive, listed in `personalities_owned.json` (none of anyone else's), and what one
archive cannot carry comes in later parts that part 1's rows and the parts' manifests agree
on; a part past the last is refused. The archive limit is shrunk, not the data grown."""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal, privacy
from tzurot.gateway.domain import Actor, JobAccepted, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import InvalidArgument
from tzurot.testing.cards import card_v3, picture, png_card

from .conftest import ALICE, FakeKeyVault, FakeMemory, command

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def noise_png(side: int) -> bytes:
    """A real PNG of random pixels (an avatar is read before it is kept)."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


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


def opened(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        return {name: zipped.read(name) for name in zipped.namelist()}


def owned(files: dict[str, bytes], slug: str) -> dict[str, Any]:
    (row,) = [p for p in json.loads(files["personalities_owned.json"]) if p["slug"] == slug]
    assert isinstance(row, dict)
    return row


async def test_the_pictures_of_her_personalities_are_in_her_export_with_rows_naming_them(
    admin: Admin, gateway: Gateway
) -> None:
    alice = Principal(await gateway.user(ALICE))
    bob = Principal(await gateway.user(BOB))
    await admin.import_card(alice, png_card(card_v3("Nova"), color="red"))
    await admin.import_card(bob, png_card(card_v3("Bram"), color="green"))
    _, card_picture = await admin.get_avatar("nova.png")
    _, bobs = await admin.get_avatar("bram.png")

    # A card's picture becomes its served avatar: one image, listed once, used as both.
    files = opened((await admin.export_user_data(alice)).archive)
    assert owned(files, "nova")["pictures"] == [
        {
            "used_as": ["avatar", "card"],
            "content_type": "image/png",
            "size_bytes": len(card_picture),
            "file": "pictures/nova/avatar.png",
            "part": 1,
        }
    ]
    assert files["pictures/nova/avatar.png"] == card_picture

    # A new avatar: the card keeps its own picture, and both are exported.
    avatar = picture("blue", (32, 32))
    await admin.set_avatar(alice, "nova", avatar)
    exported = await admin.export_user_data(alice)
    files = opened(exported.archive)
    rows = owned(files, "nova")["pictures"]
    assert [(r["used_as"], r["file"], r["size_bytes"]) for r in rows] == [
        (["avatar"], "pictures/nova/avatar.png", len(avatar)),
        (["card"], "pictures/nova/card.png", len(card_picture)),
    ]
    assert files["pictures/nova/avatar.png"] == avatar
    assert files["pictures/nova/card.png"] == card_picture
    assert (exported.part, exported.parts) == (1, 1)
    assert "This is part 1 of 1 of your export." in files["README.txt"].decode()
    # Nothing of Bob's personality, nor its picture.
    assert [p["slug"] for p in json.loads(files["personalities_owned.json"])] == ["nova"]
    assert not any(name.startswith("pictures/bram") for name in files)
    assert bobs not in b"".join(files.values())
    bram = await admin._store.find_personality("bram")
    assert bram is not None
    assert await admin._db.picture_data(bram.id, "avatar", alice.require_user().id) == b""


async def test_what_part_1_cannot_carry_comes_in_part_2_and_the_manifests_agree(
    admin: Admin,
    gateway: Gateway,
    engine: AsyncEngine,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = Principal(await gateway.user(ALICE))
    await admin.import_card(alice, json.dumps(card_v3("Wren")).encode())
    large_avatar = noise_png(116)  # ~40 KB: random pixels do not compress
    await admin.set_avatar(alice, "wren", large_avatar)
    [accepted, *_] = [event async for event in gateway.generate(command("draw my cat"))]
    assert isinstance(accepted, JobAccepted)
    drawing = PNG_MAGIC + os.urandom(20_000)
    samples = {"a": os.urandom(60_000), "b": os.urandom(50_000), "c": os.urandom(150_000)}
    ids: dict[str, str] = {}
    start = datetime(2025, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(t.job_files).values(
                job_id=accepted.job_id, position=0, filename="cat.png", content_type="image/png",
                data=drawing, description="a cat",
            )
        )  # fmt: skip
        for n, (name, data) in enumerate(samples.items()):
            ids[name] = str(
                await conn.scalar(
                    sa.insert(t.voice_samples)
                    .values(
                        personality_id=lilith.id, uploaded_by=alice.require_user().id,
                        filename=f"{name}.mp3", format="mp3", duration_secs=60.0,
                        size_bytes=len(data), data=data, created_at=start + timedelta(days=n),
                    )
                    .returning(t.voice_samples.c.id)
                )
            )  # fmt: skip
    # Room for sample a and the drawing beside the JSON; b and the avatar go to part 2,
    # which has no room for c: no part can carry it.
    limit = 100_000
    monkeypatch.setattr(privacy, "MAX_ARCHIVE_BYTES", limit)

    first = await admin.export_user_data(alice)
    second = await admin.export_user_data(alice, part=2)

    assert (first.part, first.parts, second.part, second.parts) == (1, 2, 2, 2)
    assert first.filename.endswith("-part1of2.zip")
    assert second.filename.endswith("-part2of2.zip")
    assert max(len(first.archive), len(second.archive)) <= limit
    one, two = opened(first.archive), opened(second.archive)
    path = {name: f"voice_samples/{ids[name]}.mp3" for name in samples}
    rows = {r["filename"][0]: r for r in json.loads(one["voice_samples.json"])}
    (avatar_row,) = owned(one, "wren")["pictures"]
    ((drawing_row,),) = [m["files"] for m in json.loads(one["messages.json"])]
    where = {
        name: (row["file"], row.get("omitted"), row["part"], row.get("part_file"))
        for name, row in [*rows.items(), ("avatar", avatar_row), ("drawing", drawing_row)]
    }
    drawing_path = f"answer_files/{accepted.job_id}/0-cat.png"
    assert where == {
        "a": (path["a"], None, 1, None),
        "b": (None, "size limit", 2, path["b"]),
        "c": (None, "too large", None, None),
        "avatar": (None, "size limit", 2, "pictures/wren/avatar.png"),
        "drawing": (drawing_path, None, 1, None),
    }
    assert (one[path["a"]], one[drawing_path]) == (samples["a"], drawing)
    manifest_1, manifest_2 = json.loads(one["manifest.json"]), json.loads(two["manifest.json"])
    assert (manifest_1["part"], manifest_1["parts"], manifest_1["next_part"]) == (1, 2, 2)
    assert manifest_1["files_left_out"] == 3
    readme_1 = one["README.txt"].decode()
    assert "This is part 1 of 2 of your export." in readme_1
    assert "Get the next part with /settings data export part:2" in readme_1
    assert "1 of them are larger than one export can carry" in readme_1

    # Part 2: only the files part 1 says it carries, where it says, and a manifest of them.
    in_part_2 = {r[3]: n for n, r in where.items() if r[2] == 2}
    assert set(two) == {"manifest.json", "README.txt", *in_part_2}
    assert (manifest_2["part"], manifest_2["parts"], manifest_2["next_part"]) == (2, 2, None)
    assert manifest_2["files"] == {
        path["b"]: "listed in voice_samples.json (part 1)",
        "pictures/wren/avatar.png": "listed in personalities_owned.json (part 1)",
    }
    assert (two[path["b"]], two["pictures/wren/avatar.png"]) == (samples["b"], large_avatar)
    assert "This is part 2 of 2 of your export." in two["README.txt"].decode()
    assert "part:3" not in two["README.txt"].decode()
    # The same part again, the same files: the plan does not move while the data does not.
    assert set(opened((await admin.export_user_data(alice, part=2)).archive)) == set(two)

    with pytest.raises(InvalidArgument) as refused:
        await admin.export_user_data(alice, part=3)
    assert (refused.value.field, refused.value.reason) == ("part", "EXPORT_PART_NOT_FOUND")
    assert "your export has 2 parts: there is no part 3" in refused.value.message


async def test_an_export_that_fits_has_one_part_and_refuses_a_second(
    admin: Admin, gateway: Gateway
) -> None:
    alice = Principal(await gateway.user(ALICE))
    exported = await admin.export_user_data(alice)
    assert (exported.part, exported.parts) == (1, 1)
    assert json.loads(opened(exported.archive)["manifest.json"])["next_part"] is None
    with pytest.raises(InvalidArgument) as refused:
        await admin.export_user_data(alice, part=2)
    assert "your export has 1 part: there is no part 2" in refused.value.message
