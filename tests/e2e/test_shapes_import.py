"""The shapes.inc import end to end: a backup folder written from the documented field list,
imported by the CLI's importer through the gateway (as the operator), then talked to in
Discord with its memories in the prompt."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from PIL import Image

from tzurot.cli.shapes_import import BackupError, import_shapes, read_backup
from tzurot.testing.cards import picture
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.shapes_backup import (
    ALICE,
    BASE_TS,
    BOB,
    shape_config,
    shape_memories,
    write_backup,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
async def memory_loaded(world: World) -> None:
    """The answers here read long-term memory: wait until its model is loaded."""
    await world.memory_ready()


def actor(user: dict[str, Any]) -> common.Actor:
    return common.Actor(user_id=str(user["id"]), display_name=str(user["username"]))


async def test_a_backup_imports_idempotently_and_then_talks_with_its_memories(
    world: World, tmp_path: Path
) -> None:
    avatar = world.discord.upload(world.general, "mira.png", picture("green"), "image/png")
    backup = write_backup(tmp_path / "mira", config=shape_config(avatar=avatar["url"]))
    user_map = {ALICE: str(world.alice["id"]), BOB: str(world.bob["id"])}
    owner = str(world.discord.owner["id"])
    read = read_backup(backup.folder)
    assert (len(read.memories), len(read.history)) == (6, 8)
    progress: list[tuple[int, int]] = []

    dry = await import_shapes(world.cli, read, user_map=user_map, owner=owner, dry_run=True)
    assert (dry.slug, dry.created, dry.imported, dry.mapped, dry.shared) == (
        "mira-vale",
        True,
        6,
        4,
        2,
    )
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await world.cli.GetPersonality(gw.GetPersonalityRequest(personality="mira-vale"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND  # a dry run changes nothing

    # the chat history continues in #lighthouse (its own conversation)
    lighthouse = world.discord.add_channel(world.guild, "lighthouse")
    lighthouse_id = str(lighthouse["id"])
    done = await import_shapes(
        world.cli,
        read,
        user_map=user_map,
        owner=owner,
        aliases=["keeper of greyhaven"],
        batch=4,
        progress=lambda n, total: progress.append((n, total)),
        history_channel=lighthouse_id,
        history_batch=3,
    )
    assert (done.created, done.imported, done.skipped, done.avatar) == (True, 6, 0, "downloaded")
    assert progress == [(0, 6), (4, 6), (6, 6)]
    # 8 messages: 4 exchanges of Alice's message and Mira's answer, into #lighthouse
    assert (done.history_exchanges, done.history_skipped, done.history_channel) == (
        4,
        0,
        lighthouse_id,
    )
    again = await import_shapes(
        world.cli,
        read,
        user_map=user_map,
        owner=owner,
        aliases=["keeper of greyhaven"],
        history_channel=lighthouse_id,
    )
    assert (again.created, again.imported, again.skipped) == (False, 0, 6)
    assert (again.history_exchanges, again.history_skipped) == (0, 4)  # batches differ: same ids

    found = await world.cli.GetPersonality(gw.GetPersonalityRequest(personality="mira"))
    p = found.personality
    assert (p.slug, p.display_name) == ("mira-vale", "Mira Vale")
    assert set(p.aliases) == {"mira", "the keeper", "keeper of greyhaven"}
    assert p.system_prompt.startswith("You are Mira Vale, a lighthouse keeper")
    assert p.character.description.startswith("Mira keeps the Greyhaven light")
    assert "Likes: storms, strong tea" in p.character.personality
    assert p.character.example_dialogues.startswith("{{user}}: Storm coming?")
    assert (p.error_message, p.birthday) == ("*The lamp flickers.* Mira lost the thread:", "03-14")
    assert p.voice_id == "EXAVITQu4vr4xnSDxMaL"
    assert p.avatar_url == avatar["url"]
    custom = json_format.MessageToDict(p.custom_fields)
    assert custom["search_description"] == "A salty lighthouse keeper"
    assert list(custom["favorite_reacts"]) == ["🌊", "⚓"]
    assert custom["voice"]["stability"] == 0.4
    # The old voice settings become its voice: frequency 0.5 speaks sometimes, half the time.
    voice = (
        await world.cli.GetPersonalityVoice(gw.GetPersonalityVoiceRequest(personality="mira-vale"))
    ).voice
    assert (voice.provider, voice.voice_id, voice.model) == (
        "elevenlabs",
        "EXAVITQu4vr4xnSDxMaL",
        "eleven_multilingual_v2",
    )
    assert (voice.frequency, voice.probability) == (common.VOICE_FREQUENCY_SOMETIMES, 0.5)
    assert (voice.stability, voice.similarity_boost) == (0.4, 0.8)
    owner_user = await world.cli.GetUser(gw.GetUserRequest(actor=actor(world.discord.owner)))
    assert p.owner_user_id == owner_user.user.id

    effective = await world.cli.GetEffectiveConfig(
        gw.GetEffectiveConfigRequest(personality="mira-vale")
    )
    config = effective.effective.config
    assert (config.provider, config.model) == ("openrouter", "anthropic/claude-3.5-sonnet")
    params = json_format.MessageToDict(config.advanced_parameters)
    assert params["temperature"] == 0.9
    assert params["top_k"] == 40
    assert list(params["models"]) == ["openai/gpt-4o-mini"]
    settings = await world.cli.GetSettings(gw.GetSettingsRequest(personality="mira-vale"))
    by_key = {s.key: s for s in settings.settings}
    assert by_key["max_history_messages"].value.number_value == 24
    assert by_key["memory_threshold"].value.number_value == 0.3
    assert by_key["memory_limit"].value.number_value == 7
    assert by_key["memory_limit"].source == common.CONFIG_SOURCE_PERSONALITY

    alices = await world.cli.SearchMemories(
        gw.SearchMemoriesRequest(
            actor=actor(world.alice), personality="mira-vale", query="sailboat Kestrel storm"
        )
    )
    texts = [m.text for m in alices.memories]
    assert any("Kestrel" in t for t in texts)
    kestrel = next(m for m in alices.memories if "Kestrel" in m.text)
    assert kestrel.created_at.seconds == 1_690_000_900  # the summary's original time
    bobs = await world.cli.SearchMemories(
        gw.SearchMemoriesRequest(
            actor=actor(world.bob), personality="mira-vale", query="sailboat Kestrel storm"
        )
    )
    assert not any("Kestrel" in m.text for m in bobs.memories)  # Alice's, not Bob's
    shared = await world.cli.SearchMemories(
        gw.SearchMemoriesRequest(
            actor=actor(world.bob), personality="mira-vale", query="restore the old foghorn"
        )
    )
    # the stranger nobody mapped: in the personality's shared scope, seen by everyone
    assert any("foghorn" in m.text for m in shared.memories)

    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@mira do you remember my sailboat Kestrel and the storm?"
        )
        await world.delivered(f"{said.id}:mira-vale")
        request = world.provider.chat_requests()[-1]
        there = await world.discord.say(lighthouse, world.alice, "@mira where were we?")
        await world.delivered(f"{there.id}:mira-vale")
    continued = world.provider.chat_requests()[-1].body
    body = request.body
    assert body["model"] == "anthropic/claude-3.5-sonnet"
    assert body["temperature"] == 0.9
    prompt = "\n".join(str(m["content"]) for m in body["messages"])
    assert "You are Mira Vale, a lighthouse keeper" in prompt
    assert "Kestrel and the storm that nearly sank it" in prompt  # her imported memory
    assert "message 3" not in prompt  # #general has no imported history
    # in #lighthouse the imported chat history is the conversation's, in order, with its roles
    turns = [m for m in continued["messages"] if "message " in str(m["content"])]
    assert [
        (m["role"], str(m["content"]).endswith(f"message {i}")) for i, m in enumerate(turns)
    ] == [("user" if i % 2 == 0 else "assistant", True) for i in range(8)]

    export = await world.cli.ExportUserData(gw.ExportUserDataRequest(actor=actor(world.alice)))
    with zipfile.ZipFile(io.BytesIO(export.archive)) as archive:
        history = json.loads(archive.read("history.json"))
    imported = [t for t in history if t["content"].startswith("message ")]
    assert [t["content"] for t in imported] == [f"message {i}" for i in range(8)]
    assert imported[0]["channel_id"] == lighthouse_id
    first = datetime.fromisoformat(imported[0]["created_at"])
    assert first == datetime.fromtimestamp(BASE_TS, UTC)  # the original time

    exported = await world.cli.ExportPersonality(
        gw.ExportPersonalityRequest(personality="mira-vale", format=gw.CARD_FORMAT_PNG)
    )
    image = Image.open(io.BytesIO(exported.document))
    assert image.getpixel((0, 0)) == (0, 128, 0)  # the downloaded avatar, kept


async def test_bad_backups_are_refused_clearly(world: World, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no configuration found"):
        read_backup(write_backup(tmp_path / "a", config={"hello": 1}).folder)
    broken = write_backup(tmp_path / "b", config=shape_config(name=""))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await import_shapes(world.cli, read_backup(broken.folder), user_map={})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in (caught.value.details() or "")
    bad = write_backup(tmp_path / "c", memories=[{**shape_memories(1)[0], "result": 5}])
    with pytest.raises(grpc.aio.AioRpcError) as memory_error:
        await import_shapes(world.cli, read_backup(bad.folder), user_map={}, dry_run=True)
    assert "memories[0]" in (memory_error.value.details() or "")
    plain = json.loads((bad.folder / "b.json").read_text())
    assert plain["username"] == "mira-vale"
    user = {"id": "1", "username": "x"}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await world.cli.ImportShapes(
            gw.ImportShapesRequest(actor=actor(user), config=(bad.folder / "b.json").read_bytes())
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
