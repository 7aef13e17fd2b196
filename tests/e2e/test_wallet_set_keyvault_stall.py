"""`/wallet set` tells the truth when keyvault does not answer in time, through the whole
mesh and the fake Discord: keyvault commits the encrypted key, then stalls past the gateway's
PutKey deadline. The gateway reads the user's keys back (what is known of them, never a key)
and answers that the key is saved, as it is (and may be used, and billed); a keyvault that
stalls before its commit stores nothing, and the user is told so. Both read "was not saved:
Something went wrong on our side" before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

import tzurot.gateway.clients
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.testing.discord_e2e import USER_KEY as DISCORD_USER_KEY
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.e2e import USER_KEY, Harness, actor, echo_mesh
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

PUT_KEY_SECONDS = 1.5
OTHER_KEY = "sk-or-second-key-0123456789abWXYZ"


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with echo_mesh(fresh_database(), tmp_path) as h:
        h.provider.valid_keys.add(OTHER_KEY)
        yield h


def stalling(monkeypatch: pytest.MonkeyPatch, *, after_commit: bool) -> list[str]:
    """Keyvault's store stalls past the gateway's PutKey deadline after (or before) its
    commit; returns the users whose write committed."""
    monkeypatch.setattr(tzurot.gateway.clients, "PUT_KEY_SECONDS", PUT_KEY_SECONDS)
    committed: list[str] = []
    put: Callable[..., Awaitable[Any]] = PostgresKeyStore.put

    async def put_then_stall(self: PostgresKeyStore, user_id: str, *args: Any) -> Any:
        if not after_commit:
            await asyncio.sleep(PUT_KEY_SECONDS * 3)  # cancelled with the call: no commit
        record = await put(self, user_id, *args)
        committed.append(user_id)
        await asyncio.sleep(PUT_KEY_SECONDS * 3)
        return record

    monkeypatch.setattr(PostgresKeyStore, "put", put_then_stall)
    return committed


async def wallet(h: Harness) -> dict[str, str]:
    listed = await h.bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor()))
    return {key.provider: key.hint for key in listed.keys}


async def set_key(h: Harness, key: str) -> gw.SetWalletKeyResponse:
    reply: gw.SetWalletKeyResponse = await h.bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=actor(), provider="openrouter", api_key=key)
    )
    return reply


async def test_a_key_committed_before_keyvault_stalled_reads_saved(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    committed = stalling(monkeypatch, after_commit=True)
    saved = await set_key(h, USER_KEY)
    assert committed  # keyvault stored it, then went quiet past the deadline
    assert saved.key.provider == "openrouter"
    assert saved.key.hint == USER_KEY[-4:]
    assert await wallet(h) == {"openrouter": USER_KEY[-4:]}
    # Replacing a key that was used: the changed record says the new one landed.
    await h.bot.TestWalletKey(gw.TestWalletKeyRequest(actor=actor(), provider="openrouter"))
    replaced = await set_key(h, OTHER_KEY)
    assert replaced.key.hint == OTHER_KEY[-4:]
    assert await wallet(h) == {"openrouter": OTHER_KEY[-4:]}


async def test_the_same_key_stored_again_before_keyvault_stalled_reads_saved(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key stored again with the same last four characters, never used: only the record's
    store time tells the write that landed from the record before it (it read "unconfirmed"
    before KeyRecord.stored_at)."""
    h = harness
    await set_key(h, USER_KEY)  # keyvault answers: stored, never used since
    committed = stalling(monkeypatch, after_commit=True)
    saved = await set_key(h, USER_KEY)
    assert committed
    assert saved.key.hint == USER_KEY[-4:]
    assert await wallet(h) == {"openrouter": USER_KEY[-4:]}


async def test_the_same_key_keyvault_never_stored_again_reads_not_stored(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    await set_key(h, USER_KEY)
    committed = stalling(monkeypatch, after_commit=False)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await set_key(h, USER_KEY)
    assert not committed
    assert failed.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "was not stored" in (failed.value.details() or "")
    assert await wallet(h) == {"openrouter": USER_KEY[-4:]}  # the first write stands


async def test_a_key_keyvault_never_committed_reads_not_stored(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    committed = stalling(monkeypatch, after_commit=False)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await set_key(h, USER_KEY)
    assert not committed
    assert failed.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "was not stored" in (failed.value.details() or "")
    assert USER_KEY not in (failed.value.details() or "")
    assert USER_KEY not in str(failed.value.trailing_metadata())
    assert await wallet(h) == {}


async def slash_wallet_set(world: World, user: dict[str, Any]) -> str:
    """`/wallet set openrouter` in the fake Discord, the key typed in its form: the answer."""
    opened = await world.discord.slash(
        world.general, user, "wallet", {"provider": "openrouter"}, subcommand=["set"]
    )
    await world.discord.wait_until(opened.modal)
    submitted = await world.discord.submit_modal(opened, user, {"api_key": DISCORD_USER_KEY})
    text: str = await world.discord.wait_until(
        lambda: "".join(submitted.texts()) and "".join(submitted.texts())
    )
    assert DISCORD_USER_KEY not in text
    return text


async def stored(world: World, user: dict[str, Any]) -> list[str]:
    keys = await world.cli.ListWalletKeys(
        gw.ListWalletKeysRequest(actor=common.Actor(user_id=user["id"]))
    )
    return [key.provider for key in keys.keys]


async def test_discord_says_saved_when_keyvault_committed_then_stalled(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = stalling(monkeypatch, after_commit=True)
    async with running_bot(world):
        text = await slash_wallet_set(world, world.alice)
    assert committed
    assert "Saved your openrouter key" in text
    assert await stored(world, world.alice) == ["openrouter"]


async def test_discord_says_not_stored_when_keyvault_stalled_before_its_commit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = stalling(monkeypatch, after_commit=False)
    async with running_bot(world):
        text = await slash_wallet_set(world, world.bob)
    assert not committed
    assert "was not stored" in text
    assert "Something went wrong" not in text
    assert await stored(world, world.bob) == []
