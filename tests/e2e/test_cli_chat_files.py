"""`tzurot chat` and `tzurot wallet set` through the whole mesh, as a terminal user runs them
(the real command in a process, over mTLS as `cli`; the fake provider drawing).

- An answer's generated image is saved where `--files-dir` says, with the bytes the mesh
  kept for it, and the footer (the model_footer setting) is printed under the answer; the
  turn is confirmed delivered only then. An image that cannot be saved leaves the turn
  unconfirmed (streamed) and says so.
- `wallet set --skip-validation`: a superuser's key is stored without the provider being
  asked; anyone else gets the gateway's refusal, and nothing is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import struct_pb2

from tzurot.cli.localdb import create_database
from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import USER_KEY, World, discord_world
from tzurot.testing.fake_tools import ToolCallSpec
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

from .cli_process import tzurot as run_tzurot

pytestmark = pytest.mark.e2e

OPERATOR = "operator"
"""The CLI user listed in the gateway's superusers (`cli:operator`)."""
OFFLINE_KEY = "sk-offline-1b7e9c4d2f"
"""A key the fake provider does not know: a check with it would be refused."""


@pytest.fixture(scope="module")
async def drawing_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """Lilith may draw (generate_image with fake/draw); `cli:operator` is a superuser."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    inference = {"image_provider": "openrouter", "image_model": "fake/draw"}
    async with discord_world(
        database,
        Path(tmp_path_factory.mktemp("cli-files")),
        inference=inference,
        gateway={"superusers": frozenset({f"cli:{OPERATOR}"})},
    ) as world:
        world.provider.image_models.add("fake/draw")
        await _warm_up(world)
        await world.cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(slug="lilith", skills=["generate_image"]),
                update_paths=["skills"],
            )
        )
        yield world


async def _warm_up(world: World) -> None:
    """The first embedding loads the model (slow on a loaded machine): not in a test."""
    stub = mem_grpc.MemoryServiceStub(await world.mesh.channel("gateway", target="memory"))
    request = mem.QueryMemoriesRequest(personality_id="warm-up", user_id="", query="hello")
    for attempt in range(4):
        try:
            await stub.QueryMemories(request, timeout=120)
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.DEADLINE_EXCEEDED or attempt == 3:
                raise


def cli_actor(name: str) -> common.Actor:
    return common.Actor(user_id=f"cli:{name}", display_name=name)


async def drawing_user(world: World) -> str:
    """A new CLI user with a key and the model footer on."""
    name = f"dana-{uuid.uuid4().hex[:8]}"
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(actor=cli_actor(name), provider="openrouter", api_key=USER_KEY)
    )
    await world.cli.SetSetting(
        gw.SetSettingRequest(
            actor=cli_actor(name),
            scope=common.CONFIG_SOURCE_USER,
            key="model_footer",
            value=struct_pb2.Value(bool_value=True),
        )
    )
    return name


async def tzurot(
    world: World, *args: str, stdin: str = "", cwd: Path | None = None
) -> tuple[int, str, str]:
    """The `tzurot` command in a process (cli_process.py), given two minutes: a chat waits on
    the model and saves the answer's files."""
    return await run_tzurot(world, *args, stdin=stdin, cwd=cwd, within=120)


async def jobs_of(world: World, name: str) -> list[tuple[str, str, list[bytes]]]:
    """(job id, status, its files' bytes) of the CLI user's jobs, oldest first."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            jobs = list(
                await conn.execute(
                    sa.text(
                        "SELECT id, status FROM core.jobs WHERE author_id = :author"
                        " ORDER BY created_at"
                    ),
                    {"author": f"cli:{name}"},
                )
            )
            found = []
            for job_id, status in jobs:
                files = await conn.execute(
                    sa.text(
                        "SELECT data FROM core.job_files WHERE job_id = :job ORDER BY position"
                    ),
                    {"job": job_id},
                )
                found.append((str(job_id), str(status), [bytes(r[0]) for r in files]))
            return found
    finally:
        await engine.dispose()


def ask_for_a_moon(world: World) -> None:
    world.provider.enqueue_tool_calls(ToolCallSpec("generate_image", {"prompt": "a moon"}))
    world.provider.enqueue("Here is your moon.")


async def test_chat_saves_the_drawn_image_prints_the_footer_then_confirms(
    drawing_mesh: World, tmp_path: Path
) -> None:
    world = drawing_mesh
    name = await drawing_user(world)
    files = tmp_path / "images"
    files.mkdir()
    (files / "image-1.png").write_bytes(b"an older image, kept")
    ask_for_a_moon(world)
    code, out, err = await tzurot(
        world, "chat", "lilith", "--user", name, "-m", "draw me a moon", "--files-dir", str(files)
    )
    assert code == 0, out + err
    saved = files / "image-1-1.png"
    assert out == (f"Lilith> Here is your moon.\nopenrouter/fake/lilith\nfile: {saved}\n"), (
        out + err
    )
    ((_, status, kept),) = await jobs_of(world, name)
    assert status == "delivered"
    assert len(kept) == 1
    assert saved.read_bytes() == kept[0]  # the bytes the fake drew, as the mesh kept them
    assert saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (files / "image-1.png").read_bytes() == b"an older image, kept"


async def test_chat_saves_into_the_current_folder_by_default(
    drawing_mesh: World, tmp_path: Path
) -> None:
    world = drawing_mesh
    name = await drawing_user(world)
    ask_for_a_moon(world)
    code, out, err = await tzurot(
        world, "chat", "lilith", "--user", name, "-m", "draw me a moon", cwd=tmp_path
    )
    assert code == 0, out + err
    assert out.endswith("file: image-1.png\n"), out
    ((_, status, kept),) = await jobs_of(world, name)
    assert (status, (tmp_path / "image-1.png").read_bytes()) == ("delivered", kept[0])


async def test_an_image_that_cannot_be_saved_leaves_the_turn_unconfirmed(
    drawing_mesh: World, tmp_path: Path
) -> None:
    world = drawing_mesh
    name = await drawing_user(world)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    ask_for_a_moon(world)
    code, out, err = await tzurot(
        world,
        "chat",
        "lilith",
        "--user",
        name,
        "-m",
        "draw me a moon",
        "--files-dir",
        str(blocker / "images"),
    )
    assert code == 2, out + err
    assert out == "Lilith> Here is your moon.\nopenrouter/fake/lilith\n"
    ((job_id, status, kept),) = await jobs_of(world, name)
    assert status == "streamed"  # answered and paid, never recorded delivered
    assert len(kept) == 1  # the gateway keeps the image with the job
    line = err.strip()
    assert line.startswith(f"tzurot: cannot save the answer's files in {blocker / 'images'}: ")
    assert "the answer was not confirmed as delivered" in line
    assert f"(job {job_id})" in line
    assert "Traceback" not in err


def asked_with(world: World, key: str) -> list[str]:
    return [r.path for r in world.provider.requests if r.api_key == key]


async def test_a_superuser_stores_a_key_without_the_provider_being_asked(
    drawing_mesh: World,
) -> None:
    world = drawing_mesh
    code, out, err = await tzurot(
        world,
        "wallet",
        "set",
        "openrouter",
        "--user",
        OPERATOR,
        "--key-stdin",
        "--skip-validation",
        stdin=OFFLINE_KEY,
    )
    assert code == 0, out + err
    assert out.startswith(f"Stored your openrouter key (…{OFFLINE_KEY[-4:]}).\n")
    assert "stored unchecked (--skip-validation)" in out
    assert asked_with(world, OFFLINE_KEY) == []  # no dry run at the provider
    keys = await world.cli.ListWalletKeys(gw.ListWalletKeysRequest(actor=cli_actor(OPERATOR)))
    assert [(k.provider, k.hint) for k in keys.keys] == [("openrouter", OFFLINE_KEY[-4:])]
    assert OFFLINE_KEY not in out + err


async def test_skip_validation_is_refused_to_anyone_else(drawing_mesh: World) -> None:
    world = drawing_mesh
    name = f"eve-{uuid.uuid4().hex[:8]}"
    code, out, err = await tzurot(
        world,
        "wallet",
        "set",
        "openrouter",
        "--user",
        name,
        "--key-stdin",
        "--skip-validation",
        stdin=OFFLINE_KEY,
    )
    assert (code, out) == (1, ""), err
    assert err == (
        "tzurot: [permission_denied] only superusers may store a key without validation\n"
    )
    assert asked_with(world, OFFLINE_KEY) == []
    keys = await world.cli.ListWalletKeys(gw.ListWalletKeysRequest(actor=cli_actor(name)))
    assert list(keys.keys) == []


async def test_chat_shows_the_reasoning_only_when_asked_and_says_when_an_answer_was_cut(
    drawing_mesh: World, tmp_path: Path
) -> None:
    world = drawing_mesh
    name = await drawing_user(world)
    world.provider.enqueue("Plainly, yes.", reasoning="I weighed it\nand then said yes")
    code, out, err = await tzurot(
        world, "chat", "lilith", "--user", name, "-m", "is it so?", "--show-reasoning",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, out + err
    assert out == (
        "Lilith> Plainly, yes.\nreasoning:\n  I weighed it\n  and then said yes\n"
        "openrouter/fake/lilith\n"
    ), out + err

    world.provider.enqueue("Quietly, no.", reasoning="a thought not asked for")
    world.provider.enqueue("Once upon a time, a tale too long for", finish_reason="length")
    _, unasked, _ = await tzurot(world, "chat", "lilith", "--user", name, "-m", "is it?")
    code, cut, err = await tzurot(world, "chat", "lilith", "--user", name, "-m", "a tale")
    assert unasked == "Lilith> Quietly, no.\nopenrouter/fake/lilith\n"
    assert code == 0, cut + err
    assert cut == (
        "Lilith> Once upon a time, a tale too long for\n"
        "(cut off: the model reached its length limit)\nopenrouter/fake/lilith\n"
    )


async def kept_reasoning(world: World, name: str) -> list[str | None]:
    """The reasoning each of the CLI user's jobs keeps (the row and Inspect), oldest first."""
    kept: list[str | None] = []
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT id, reasoning FROM core.jobs WHERE author_id = :author"
                    " ORDER BY created_at"
                ),
                {"author": f"cli:{name}"},
            )
            for job_id, reasoning in rows:
                status = await world.cli.GetJobStatus(
                    gw.GetJobStatusRequest(job_id=str(job_id), actor=cli_actor(name))
                )
                assert status.job.inspection.reasoning == (reasoning or "")
                kept.append(reasoning)
    finally:
        await engine.dispose()
    return kept


async def test_show_reasoning_only_shows_it_and_keep_reasoning_alone_keeps_it(
    drawing_mesh: World, tmp_path: Path
) -> None:
    """Kept reasoning may restate memories and the prompt and superusers read it through
    Inspect: --show-reasoning prints it and keeps nothing; the user's keep_reasoning keeps it."""
    world = drawing_mesh
    name = await drawing_user(world)
    world.provider.enqueue("Yes.", reasoning="a private thought")
    code, out, err = await tzurot(
        world, "chat", "lilith", "--user", name, "-m", "is it so?", "--show-reasoning"
    )
    assert code == 0, out + err
    assert "reasoning:\n  a private thought\n" in out
    assert await kept_reasoning(world, name) == [None]

    await world.cli.SetSetting(
        gw.SetSettingRequest(
            actor=cli_actor(name),
            scope=common.CONFIG_SOURCE_USER,
            key="keep_reasoning",
            value=struct_pb2.Value(bool_value=True),
        )
    )
    world.provider.enqueue("No.", reasoning="a thought to keep")
    code, out, err = await tzurot(world, "chat", "lilith", "--user", name, "-m", "is it?")
    assert code == 0, out + err
    assert "reasoning" not in out  # kept, not shown
    assert await kept_reasoning(world, name) == [None, "a thought to keep"]
