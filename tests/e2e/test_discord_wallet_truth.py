"""Wallet truth through the fake Discord, the whole mesh and the fake provider: a key that
answered shows "last used" in `/wallet list` (gateway's batched MarkUsed into keyvault), a key
the provider rejects in use turns inactive and says so, and `/wallet test` or a new key makes
it active again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import USER_KEY, World, discord_world, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

NEW_KEY = "sk-or-alice-new-key-9876543210fedcba"


@pytest.fixture(scope="module")
async def discord_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """The shared mesh, with key uses flushed to keyvault every 0.2 s (10 s by default)."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(
        database,
        Path(tmp_path_factory.mktemp("wallet")),
        gateway={"key_use_flush_seconds": 0.2},
    ) as w:
        yield w


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


def _actor(user: dict[str, str]) -> common.Actor:
    return common.Actor(user_id=str(user["id"]), display_name=str(user["username"]))


async def wallet(world: World, *subcommand: str) -> str:
    options = {"provider": "openrouter"} if subcommand[0] == "test" else {}
    asked = await world.discord.slash(
        world.general, world.alice, "wallet", options, subcommand=list(subcommand)
    )
    return await answered(world, asked)


async def until_used(world: World) -> None:
    """Uses reach keyvault in the background: waits until the batch has landed."""
    for _ in range(300):
        listed = await world.cli.ListWalletKeys(gw.ListWalletKeysRequest(actor=_actor(world.alice)))
        if listed.keys and listed.keys[0].HasField("last_used_at"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the key's use never reached keyvault")


async def failed(world: World, idempotency_key: str) -> gw.Job:
    request = gw.GetJobStatusRequest(idempotency_key=idempotency_key)
    for _ in range(600):
        try:
            reply = await world.cli.GetJobStatus(request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.NOT_FOUND:  # not sent by the bot yet
                raise
        else:
            if reply.job.status == common.JOB_STATUS_FAILED:
                return reply.job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {idempotency_key} did not fail")


async def test_last_used_and_a_rejected_key_shown_by_wallet_list(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        fresh = await wallet(world, "list")
        said = await world.discord.say(world.general, world.alice, "@Lilith hello")
        await world.delivered(f"{said.id}:lilith")
        await until_used(world)
        used = await wallet(world, "list")

        world.provider.valid_keys.discard(USER_KEY)  # Alice revoked it at the provider
        again = await world.discord.say(world.general, world.alice, "@Lilith still there?")
        job = await failed(world, f"{again.id}:lilith")
        rejected = await wallet(world, "list")
        tested = await wallet(world, "test")

        world.provider.valid_keys.add(USER_KEY)  # she restored it: test finds it working
        works = await wallet(world, "test")
        restored = await wallet(world, "list")
    assert "**openrouter**" in fresh
    assert ": active" in fresh
    assert "last used" not in fresh  # never used yet
    assert ": active, last used <t:" in used
    assert job.error.reason == "INVALID_API_KEY"
    assert "inactive: openrouter rejected it" in rejected
    assert "rejected" in tested
    assert "works" in works
    assert ": active, last used <t:" in restored


async def test_storing_a_new_key_makes_it_active_again(world: World) -> None:
    world.provider.valid_keys.add(NEW_KEY)
    await world.set_key(world.alice)
    world.provider.valid_keys.discard(USER_KEY)
    try:
        async with running_bot(world):
            said = await world.discord.say(world.general, world.alice, "@Lilith hello")
            await failed(world, f"{said.id}:lilith")
            rejected = await wallet(world, "list")
            await world.set_key(world.alice, NEW_KEY)
            replaced = await wallet(world, "list")
            answered_now = await world.discord.say(world.general, world.alice, "@Lilith hi again")
            await world.delivered(f"{answered_now.id}:lilith")
    finally:
        world.provider.valid_keys.add(USER_KEY)
    assert "inactive" in rejected
    assert ": active" in replaced
    assert "inactive" not in replaced
    assert "(…dcba)" in replaced  # the new key's hint
