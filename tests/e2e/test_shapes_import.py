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
from urllib.parse import urlsplit

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import json_format
from PIL import Image

from tzurot.cli.shapes_import import BackupError, download_avatar, import_shapes, read_backup
from tzurot.db.engine import create_engine
from tzurot.gateway.shapes.summaries import PART_CHARS, summary_parts
from tzurot.gateway.uploaded_json import MAX_JSON_DEPTH
from tzurot.testing.cards import picture
from tzurot.testing.discord_e2e import World, member_actor, running_bot
from tzurot.testing.shapes_backup import (
    ALICE,
    BASE_TS,
    BOB,
    long_summary,
    long_summary_memory,
    shape_config,
    shape_history,
    shape_memories,
    write_backup,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


def fake_cdn_fetch(url: str) -> tuple[bytes, str]:
    """The CLI's download, with the fake Discord CDN (loopback, standing in for a public
    host) allowed: the download refuses private addresses (review 158 L3)."""
    return download_avatar(url, allow=frozenset({urlsplit(url).netloc}))


pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
async def memory_loaded(world: World) -> None:
    """The answers here read long-term memory: wait until its model is loaded."""
    await world.memory_ready()


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
        fetch=fake_cdn_fetch,
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
        fetch=fake_cdn_fetch,
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
    owner_user = await world.cli.GetUser(gw.GetUserRequest(actor=member_actor(world.discord.owner)))
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
            actor=member_actor(world.alice), personality="mira-vale", query="sailboat Kestrel storm"
        )
    )
    texts = [m.text for m in alices.memories]
    assert any("Kestrel" in t for t in texts)
    kestrel = next(m for m in alices.memories if "Kestrel" in m.text)
    assert kestrel.created_at.seconds == 1_690_000_900  # the summary's original time
    bobs = await world.cli.SearchMemories(
        gw.SearchMemoriesRequest(
            actor=member_actor(world.bob), personality="mira-vale", query="sailboat Kestrel storm"
        )
    )
    assert not any("Kestrel" in m.text for m in bobs.memories)  # Alice's, not Bob's
    shared = await world.cli.SearchMemories(
        gw.SearchMemoriesRequest(
            actor=member_actor(world.bob), personality="mira-vale", query="restore the old foghorn"
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

    export = await world.cli.ExportUserData(
        gw.ExportUserDataRequest(actor=member_actor(world.alice))
    )
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
            gw.ImportShapesRequest(
                actor=member_actor(user), config=(bad.folder / "b.json").read_bytes()
            )
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def stored_rows(world: World, slug: str) -> tuple[list[tuple[Any, ...]], int]:
    """The memories (text, user_id, created_at) and the number of turns of a personality, read
    from memory's tables in Postgres; ([], 0) when there is no such personality."""
    try:
        found = await world.cli.GetPersonality(gw.GetPersonalityRequest(personality=slug))
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return [], 0
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            where = {"pid": found.personality.id}
            rows = await conn.execute(
                sa.text(
                    "select text, user_id, created_at from memory.memories "
                    "where personality_id = :pid order by created_at, text"
                ),
                where,
            )
            turns = await conn.scalar(
                sa.text("select count(*) from memory.turns where personality_id = :pid"), where
            )
    finally:
        await engine.dispose()
    return [tuple(r) for r in rows], int(turns or 0)


async def test_a_real_sized_summary_is_split_into_memories_that_keep_its_time_and_user(
    world: World, tmp_path: Path
) -> None:
    created = BASE_TS + 5_000  # written in milliseconds in the backup
    config = shape_config(name="Orla Finch", username="orla-finch", aliases=[], avatar="")
    memories = [*shape_memories(2), long_summary_memory(created_at_ms=created * 1000)]
    backup = write_backup(tmp_path / "orla", config=config, memories=memories, history=[])
    read = read_backup(backup.folder)
    user_map = {ALICE: str(world.alice["id"]), BOB: str(world.bob["id"])}
    parts = summary_parts(long_summary())
    assert len(long_summary()) > 10_000
    assert len(parts) > 5
    assert all(len(part) <= PART_CHARS for part in parts)

    dry = await import_shapes(world.cli, read, user_map=user_map, dry_run=True)
    assert (dry.imported, dry.split, dry.split_parts) == (3, 1, len(parts))
    done = await import_shapes(world.cli, read, user_map=user_map, batch=2)
    assert (done.imported, done.skipped, done.split, done.split_parts) == (3, 0, 1, len(parts))

    rows, _ = await stored_rows(world, "orla-finch")
    assert len(rows) == 2 + len(parts)
    alice = (await world.cli.GetUser(gw.GetUserRequest(actor=member_actor(world.alice)))).user.id
    long_rows = [r for r in rows if r[2] == datetime.fromtimestamp(created, UTC)]
    assert sorted(text for text, _, _ in long_rows) == sorted(parts)  # all of it, once
    assert {user for _, user, _ in long_rows} == {alice}  # Alice's, like the summary
    words = " ".join(text for text, _, _ in long_rows).split()
    assert sorted(words) == sorted(long_summary().split())  # not a word lost

    again = await import_shapes(world.cli, read, user_map=user_map)
    assert (again.imported, again.skipped, again.split) == (0, 3, 1)
    assert len((await stored_rows(world, "orla-finch"))[0]) == 2 + len(parts)

    # the sextant is in the middle of the summary, past what one embedding of it would read
    found = await world.cli.SearchMemories(
        gw.SearchMemoriesRequest(
            actor=member_actor(world.alice), personality="orla-finch", query="brass sextant Halcyon"
        )
    )
    halcyon = [m for m in found.memories if "Halcyon" in m.text]
    assert halcyon
    assert halcyon[0].created_at.seconds == created


def _nul(text: str) -> str:
    return text[:10] + "\0" + text[10:]


def _refusals() -> list[tuple[str, dict[str, Any], str]]:
    """(case, what the backup holds, words of the error) for data the import cannot keep."""
    memories, history = shape_memories(2), shape_history(4)
    return [
        ("nan-config", {"config": {"engine_temperature": float("nan")}}, "NaN is not a number"),
        ("nul-config", {"config": {"jailbreak": _nul("You are a keeper")}}, "config.jailbreak"),
        ("inf-config", {"config": {"engine_top_p": float("inf")}}, "Infinity is not a number"),
        ("nan-kept-field", {"config": {"shape_settings": {"x": float("nan")}}}, "NaN is not"),
        (
            "nan-string",
            {"config": {"engine_temperature": "NaN"}},
            "config.engine_temperature: Input should be a finite number",
        ),
        (
            "ts-overflow",
            {"memories": [memories[0], _meta(memories[1], created_at=1e20)]},
            "memories[1].metadata.created_at: must not be in the future",
        ),
        (
            "ts-nan",
            {"memories": [memories[0], _meta(memories[1], end_ts=float("nan"))]},
            "NaN is not a number",
        ),
        (
            "nul-summary",
            {"memories": [memories[0], {**memories[1], "result": _nul(memories[1]["result"])}]},
            "memories[1].result: contains NUL",
        ),
        (
            "blank-summary",
            {"memories": [memories[0], {**memories[1], "result": "  "}]},
            "memories[1].result: must not be empty",
        ),
        (
            "nul-message",
            {"history": [*history[:3], {**history[3], "content": _nul("the answer here")}]},
            "history[3].content: contains NUL",
        ),
        (
            "ts-microseconds",
            {"history": [*history[:3], {**history[3], "timestamp": 1.7e15}]},
            "history[3].timestamp: must not be in the future (read as milliseconds)",
        ),
        (
            "author-id",
            {"history": [{**history[0], "user_id": "alice smith"}, *history[1:]]},
            "history[0].user_id",
        ),
    ]


def _meta(item: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**item, "metadata": {**item["metadata"], **changes}}


@pytest.mark.parametrize(
    ("case", "holds", "words"), _refusals(), ids=[case for case, _, _ in _refusals()]
)
async def test_the_dry_run_refuses_what_the_import_would_fail_on(
    world: World, tmp_path: Path, case: str, holds: dict[str, Any], words: str
) -> None:
    slug = f"case-{case}"
    config = shape_config(name=f"Case {case}", username=slug, aliases=[], avatar="")
    backup = write_backup(
        tmp_path / case,
        config=config | holds.get("config", {}),
        memories=holds.get("memories", shape_memories(2)),
        history=holds.get("history", shape_history(4)),
    )
    read = read_backup(backup.folder)
    refused = []
    for dry_run in (True, False):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await import_shapes(world.cli, read, user_map={}, dry_run=dry_run)
        refused.append((caught.value.code(), caught.value.details()))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert words in (caught.value.details() or "")
    assert refused[0] == refused[1]  # the import fails only where the dry run said it would
    rows, turns = await stored_rows(world, slug)
    assert turns == 0  # no batch half-imported (the real run stops before the bad one)
    if "history" not in holds:  # a good memories document before a bad history is imported
        assert rows == []


async def test_json_the_decoder_chokes_on_is_refused_not_an_internal_error(
    world: World,
) -> None:
    documents = {
        b"[" * 5_000 + b"]" * 5_000: "nested too deeply",
        b"[" * 100 + b"]" * 100: f"nested more than {MAX_JSON_DEPTH} levels deep",
        b'[{"id": "a", "result": "x", "n": ' + b"7" * 5_000 + b"}]": "more than 300 digits",
    }
    for document, words in documents.items():
        for dry_run in (True, False):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await world.cli.ImportShapesMemories(
                    gw.ImportShapesMemoriesRequest(
                        personality="mira-vale", memories=document, dry_run=dry_run
                    )
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert words in (caught.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as config:
            await world.cli.ImportShapes(gw.ImportShapesRequest(config=document, dry_run=True))
        assert config.value.code() == grpc.StatusCode.INVALID_ARGUMENT
