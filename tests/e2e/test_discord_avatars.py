"""`/character avatar` end to end: an image attached in Discord is kept by the gateway and
served publicly by the real Envoy edge at GET /avatars/{slug}.{ext}; answers post with it."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import grpc
import pytest
from PIL import Image

from tzurot.cli.localdb import create_database
from tzurot.cli.shapes_import import download_avatar, import_shapes, read_backup
from tzurot.testing.cards import card_v3, charx_card, picture, png_card
from tzurot.testing.discord_e2e import World, discord_world, running_bot
from tzurot.testing.edge import EdgePorts, new_edge_ports, running_envoy
from tzurot.testing.shapes_backup import shape_config, write_backup
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
async def avatar_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[World, EdgePorts]]:
    ports = new_edge_ports()
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    workdir: Path = tmp_path_factory.mktemp("avatars")
    public_url = f"http://127.0.0.1:{ports.public}"
    async with (
        discord_world(database, workdir, gateway={"public_url": public_url}) as world,
        running_envoy(world.mesh.pki / "edge", world.mesh.ports.gateway, workdir, ports=ports),
    ):
        yield world, ports


async def test_an_avatar_uploaded_in_discord_is_served_by_the_edge(
    avatar_mesh: tuple[World, EdgePorts],
) -> None:
    world, ports = avatar_mesh
    world = world.scene()
    await world.set_key(world.alice)
    image = world.discord.upload(world.general, "nova.png", PNG, "image/png")
    async with running_bot(world):
        created = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"name": "Nova", "system_prompt": "You are Nova."},
            subcommand=["create"],
        )
        await world.discord.wait_until(lambda: any(created.texts()))
        changed = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"personality": "nova", "image": image},
            subcommand=["avatar"],
        )
        await world.discord.wait_until(lambda: any(changed.texts()))
        assert "New avatar for **Nova**" in "".join(changed.texts())
        said = await world.discord.say(world.general, world.alice, "@Nova hello")
        await world.delivered(f"{said.id}:nova")
    nova = (
        await world.cli.GetPersonality(
            gw.GetPersonalityRequest(
                actor=common.Actor(user_id=world.alice["id"]), personality="nova"
            )
        )
    ).personality
    base = f"http://127.0.0.1:{ports.public}"
    assert nova.avatar_url.startswith(f"{base}/avatars/nova.png?v=")
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.avatar_url == nova.avatar_url  # Discord is given the stable URL
    async with aiohttp.ClientSession() as http:
        async with http.get(nova.avatar_url) as served:
            assert served.status == 200, await served.text()
            assert await served.read() == PNG
            assert served.headers["Content-Type"] == "image/png"
            assert served.headers["Cache-Control"] == "public, max-age=86400"
        # One read-only route: the wrong extension, other methods and other calls are refused.
        async with http.get(f"{base}/avatars/nova.jpg") as wrong:
            assert wrong.status == 404
        async with http.post(f"{base}/avatars/nova.png") as posted:
            assert posted.status == 404
        async with http.get(f"{base}/v1/personalities") as admin:
            assert admin.status == 404


async def test_a_non_image_is_refused_before_anything_is_stored(
    avatar_mesh: tuple[World, EdgePorts],
) -> None:
    world, _ = avatar_mesh
    world = world.scene()
    fake_image = world.discord.upload(world.general, "x.png", b"not really a png", "image/png")
    async with running_bot(world):
        created = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"name": "Vex", "system_prompt": "You are Vex."},
            subcommand=["create"],
        )
        await world.discord.wait_until(lambda: any(created.texts()))
        changed = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"personality": "vex", "image": fake_image},
            subcommand=["avatar"],
        )
        await world.discord.wait_until(lambda: any(changed.texts()))
    assert "PNG, JPEG, GIF or WebP" in "".join(changed.texts())


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/a.png", "https://"])
async def test_an_import_with_an_avatar_url_discord_would_refuse_is_refused(
    avatar_mesh: tuple[World, EdgePorts], url: str
) -> None:
    world, _ = avatar_mesh
    seed = f"name: Broken\navatar_url: '{url}'\nsystem_prompt: x\n".encode()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await world.cli.ImportPersonality(
            gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=seed)
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "avatar_url" in (refused.value.details() or "")


async def import_card(world: World, filename: str, data: bytes) -> str:
    file = world.discord.upload(world.general, filename, data, "application/octet-stream")
    done = await world.discord.slash(
        world.general, world.alice, "character", {"card": file}, subcommand=["import"]
    )
    await world.discord.wait_until(lambda: any(done.texts()))
    return "".join(done.texts())


def color_of(data: bytes) -> tuple[int, ...]:
    pixel = Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return pixel


async def test_imported_characters_post_under_their_own_served_avatars(
    avatar_mesh: tuple[World, EdgePorts], tmp_path: Path
) -> None:
    """A PNG card's picture, a CHARX card's main icon and a shapes.inc avatar are kept by the
    gateway, served by the edge, and the imported personalities post under them."""
    world, ports = avatar_mesh
    world = world.scene()
    await world.set_key(world.alice)
    base = f"http://127.0.0.1:{ports.public}"
    icon = {"type": "icon", "uri": "embeded://assets/icon/main.png", "name": "main", "ext": "png"}
    charx = charx_card(
        card_v3(name="Alyx", assets=[icon], character_book=None),
        {"assets/icon/main.png": picture("green")},
    )
    shapes_avatar = world.discord.upload(world.general, "mira.png", picture("blue"), "image/png")
    backup = write_backup(tmp_path / "mira", config=shape_config(avatar=shapes_avatar["url"]))
    shapes = await import_shapes(
        world.cli,
        read_backup(backup.folder),
        user_map={},
        owner=str(world.alice["id"]),
        # The fake CDN is on loopback, standing in for a public host (review 158 L3).
        fetch=lambda url: download_avatar(url, allow=frozenset({urlsplit(url).netloc})),
    )
    assert shapes.avatar == "downloaded"
    async with running_bot(world):
        for filename, data in (
            ("grigori.png", png_card(card_v3(name="Grigori"), color="red")),
            ("alyx.charx", charx),
        ):
            assert "Imported" in await import_card(world, filename, data)
        for slug in ("grigori", "alyx", "mira-vale"):
            said = await world.discord.say(world.general, world.alice, f"@{slug} hello")
            await world.delivered(f"{said.id}:{slug}")
    posted = {m.author_name: m.avatar_url for m in world.discord.webhook_messages(world.general)}
    expected = {"grigori": (255, 0, 0), "alyx": (0, 128, 0), "mira-vale": (0, 0, 255)}
    async with aiohttp.ClientSession() as http:
        for slug, color in expected.items():
            p = (
                await world.cli.GetPersonality(
                    gw.GetPersonalityRequest(
                        actor=common.Actor(user_id=world.alice["id"]), personality=slug
                    )
                )
            ).personality
            assert p.avatar_url.startswith(f"{base}/avatars/{slug}.png?v="), p.avatar_url
            assert posted[p.display_name] == p.avatar_url  # it posts under its own avatar
            async with http.get(p.avatar_url) as served:
                assert served.status == 200, await served.text()
                assert served.headers["Content-Type"] == "image/png"
                assert color_of(await served.read()) == color
