"""`/settings data export` through Discord: the fake Discord, the real bot, the whole mesh on
one real Postgres, the fake ElevenLabs. Her export holds everything of hers that
`/settings data delete` would erase (test_discord_data_delete.py), keys excepted: her
lorebook, the voice sample she uploaded (its audio), the voice she cloned, her private
personality as a card, her memory mode, her messages and history, which providers hold a key
of hers; in a versioned format. Bob talks to the same personality in the same channel: not a
word of his is in it. The avatar of a personality she owns is a file of the archive; with
less room than it needs, the export comes in parts, and `part:2` brings what part 1 left out.
A personality she imported from a CHARX is in it as that CHARX, with every asset the card
brought (bytes as imported), and imports again from it.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from tzurot.audio import encode_tone
from tzurot.gateway.admin import privacy
from tzurot.testing.cards import card_v3, charx_card, picture
from tzurot.testing.discord_e2e import (
    USER_KEY,
    VoiceWorld,
    member_actor,
    running_bot,
    slash_text,
    voice_world,
)
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

LOREBOOK = b'{"entries": {"0": {"key": ["tavern"], "content": "The Prancing Pony."}}}'


@pytest.fixture(scope="module")
async def voice_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[VoiceWorld]:
    """conftest's, with a public URL: the gateway keeps avatars (nothing fetches them here)."""
    async with voice_world(
        postgres_url, tmp_path_factory.mktemp("voice"), gateway={"public_url": "http://127.0.0.1:9"}
    ) as world:
        yield world


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: its size is about its pixels'."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


def unzipped(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def test_data_export_holds_all_of_hers_and_nothing_of_bobs(voice_scene: VoiceWorld) -> None:
    world = voice_scene.world
    alice = member_actor(world.alice)
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(actor=alice, provider="elevenlabs", api_key=DEFAULT_ELEVENLABS_KEY)
    )
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=alice,
            personality=common.Personality(
                slug="wren", display_name="Wren", system_prompt="You are Wren.", public=False
            ),
        )
    )
    await world.cli.ImportLorebook(
        gw.ImportLorebookRequest(actor=alice, document=LOREBOOK, name="My notes")
    )
    await world.cli.StartFresh(gw.StartFreshRequest(actor=alice, personality="lilith"))
    audio = encode_tone(1.0)
    async with running_bot(world):
        sample = world.discord.upload(world.general, "me.mp3", audio, "audio/mpeg")
        added = await slash_text(
            world, world.alice, "personality", "voice-sample", "upload",
            personality="wren", file=sample,
        )  # fmt: skip
        assert "Added" in added
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="wren"
        )
        assert "Cloned from 1 sample" in cloned
        said = await world.discord.say(world.general, world.alice, "@Lilith my cat is Pixel")
        await world.delivered(f"{said.id}:lilith")
        bobs = await world.discord.say(world.general, world.bob, "@Lilith I grow tomatoes")
        await world.delivered(f"{bobs.id}:lilith")

        exported = await world.discord.slash(
            world.general, world.alice, "settings", subcommand=["data", "export"]
        )
        await world.discord.wait_until(lambda: bool(exported.files), within=30)
    assert "Your data" in "".join(exported.texts())
    with zipfile.ZipFile(io.BytesIO(b"".join(exported.files))) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}

    def rows(name: str) -> list[dict[str, Any]]:
        found = json.loads(files[name])
        assert isinstance(found, list)
        return found

    everything = b"".join(files.values())
    (clone,) = [v for v in voice_scene.eleven.cloned_voices() if v.name == "Wren"]
    (voice_sample,) = rows("voice_samples.json")
    (wren,) = rows("personalities_owned.json")
    (mode,) = rows("memory_modes.json")
    manifest = json.loads(files["manifest.json"])
    got = {
        "format": (manifest["format"], manifest["version"]),
        "every file listed": set(manifest["files"]) <= set(files),
        "lorebooks": [(b["name"], b["entries"][0]["content"]) for b in rows("lorebooks.json")],
        "voice sample": (voice_sample["personality"], voice_sample["filename"]),
        "its audio": files[str(voice_sample["file"])] == audio,
        "voices cloned": [(v["personality"], v["voice_id"]) for v in rows("voices_cloned.json")],
        "card": json.loads(files[str(wren["card_file"])])["data"]["name"],
        "fresh start": mode["fresh_since"] is not None,
        "requests": [m["request_content"] for m in rows("messages.json")],
        "history": [t["author_name"] for t in rows("history.json")],
        "wallet": sorted(str(w["provider"]) for w in rows("wallet.json")),
        # Her chat just used it: "last used" is now, not keyvault's last batch of uses.
        "openrouter last used": any(
            w["provider"] == "openrouter" and w["last_used_at"] for w in rows("wallet.json")
        ),
        "a key": any(k.encode() in everything for k in (USER_KEY, DEFAULT_ELEVENLABS_KEY)),
        "bob": b"tomatoes" in everything or str(world.bob["id"]).encode() in everything,
    }
    assert got == {
        "format": ("tzurot-user-export", 1),
        "every file listed": True,
        "lorebooks": [("My notes", "The Prancing Pony.")],
        "voice sample": ("wren", "me.mp3"),
        "its audio": True,
        "voices cloned": [("wren", clone.voice_id)],
        "card": "Wren",
        "fresh start": True,
        "requests": ["my cat is Pixel"],
        "history": ["Alice", "Lilith"],
        "wallet": ["elevenlabs", "openrouter"],
        "openrouter last used": True,
        "a key": False,
        "bob": False,
    }


async def test_her_personalitys_avatar_is_in_her_export_and_part_2_brings_what_part_1_left_out(
    voice_scene: VoiceWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = voice_scene.world
    await world.set_key(world.alice)
    avatar = noise_png(26)  # about 2 KB
    image = world.discord.upload(world.general, "pip.png", avatar, "image/png")

    async def export(**options: Any) -> tuple[str, bytes]:
        """The bot's reply to `/settings data export`, and the zip it posted (b"": none)."""
        exported = await world.discord.slash(
            world.general, world.alice, "settings", options, subcommand=["data", "export"]
        )
        await world.discord.wait_until(lambda: bool(exported.files) or any(exported.texts()))
        return "".join(exported.texts()), b"".join(exported.files)

    async with running_bot(world):
        created = await slash_text(
            world, world.alice, "character", "create", name="Pip", system_prompt="You are Pip."
        )
        assert "Pip" in created
        changed = await slash_text(
            world, world.alice, "character", "avatar", personality="pip", image=image
        )  # acts only on a personality named by its slug (commands/chosen.py)
        assert "New avatar for **Pip** (`pip`)." in changed, changed
        said = await world.discord.say(world.general, world.alice, "@Pip hello")
        await world.delivered(f"{said.id}:pip")

        whole_text, whole_zip = await export()
        whole = unzipped(whole_zip)
        (pip,) = json.loads(whole["personalities_owned.json"])
        (row,) = pip["pictures"]
        assert (row["used_as"], row["file"], row["part"]) == (
            ["avatar"],
            "pictures/pip/avatar.png",
            1,
        )
        assert whole["pictures/pip/avatar.png"] == avatar
        assert whole_text.startswith("Your data:")

        # Room for her JSON and half the picture: it waits for part 2.
        limit = len(whole_zip) - len(avatar) // 2
        monkeypatch.setattr(privacy, "MAX_ARCHIVE_BYTES", limit)
        first_text, first_zip = await export()
        second_text, second_zip = await export(part=2)
        past_text, past_zip = await export(part=3)
    first, second = unzipped(first_zip), unzipped(second_zip)

    (row,) = json.loads(first["personalities_owned.json"])[0]["pictures"]
    assert (row["file"], row["omitted"], row["part"], row["part_file"]) == (
        None,
        "size limit",
        2,
        "pictures/pip/avatar.png",
    )
    assert not any(name.startswith("pictures/") for name in first)
    assert "Your data, part 1 of 2" in first_text
    assert "`/settings data export part:2`" in first_text
    assert "/settings data export part:2" in first["README.txt"].decode()
    assert json.loads(first["manifest.json"])["parts"] == 2
    assert set(second) == {"manifest.json", "README.txt", "pictures/pip/avatar.png"}
    assert second["pictures/pip/avatar.png"] == avatar
    assert json.loads(second["manifest.json"])["files"] == {
        "pictures/pip/avatar.png": "listed in personalities_owned.json (part 1)"
    }
    assert "Your data, part 2 of 2" in second_text
    assert "That is the last part." in second_text
    assert past_zip == b""
    assert "there is no part 3" in past_text


async def test_a_personality_she_imported_from_a_charx_is_in_her_export_with_its_assets(
    voice_scene: VoiceWorld,
) -> None:
    world = voice_scene.world
    icon = "assets/icon/images/main.png"
    assets = {
        "assets/emotion/images/happy.png": noise_png(12),
        "assets/other/notes.bin": os.urandom(5_000),
    }
    card = card_v3("Nova", character_book=None)
    card["data"]["assets"] = [
        {"type": "icon", "uri": f"embeded://{icon}", "name": "main", "ext": "png"},
        {"type": "emotion", "uri": "embeded://assets/emotion/images/happy.png", "name": "happy",
         "ext": "png"},
        {"type": "other", "uri": "embeded://assets/other/notes.bin", "name": "notes",
         "ext": "bin"},
    ]  # fmt: skip
    charx = charx_card(card, {icon: picture("green"), **assets})

    async def import_card(data: bytes) -> str:
        file = world.discord.upload(world.general, "nova.charx", data, "application/zip")
        return await slash_text(world, world.alice, "character", "import", card=file)

    async with running_bot(world):
        assert "Imported **Nova**" in await import_card(charx)
        exported = await world.discord.slash(
            world.general, world.alice, "settings", subcommand=["data", "export"]
        )
        await world.discord.wait_until(lambda: bool(exported.files), within=30)
        files = unzipped(b"".join(exported.files))
        (nova,) = json.loads(files["personalities_owned.json"])
        assert (nova["card_file"], nova["charx"]["file"], nova["charx"]["assets"]) == (
            "cards/nova.json",
            "cards/nova.charx",
            sorted(assets),
        )
        inside = unzipped(files["cards/nova.charx"])
        assert {path: inside[path] for path in assets} == assets
        # The CHARX imports again (her own personality: updated), its assets kept.
        assert "Updated **Nova**" in await import_card(files["cards/nova.charx"])
        again = await world.discord.slash(
            world.general, world.alice, "settings", subcommand=["data", "export"]
        )
        await world.discord.wait_until(lambda: bool(again.files), within=30)
    charx_again = unzipped(unzipped(b"".join(again.files))["cards/nova.charx"])
    assert {path: charx_again[path] for path in assets} == assets
