"""A key stored for a provider that now takes no key: `/wallet test` does not send it anywhere
to check, through the fake Discord and the real bot, and through the real `tzurot wallet test`
(a process, over mTLS as `cli`).

The operator's `TZUROT_PROVIDERS` declares a local chat server (`my-llm`: `"keyless": true`).
A key for it may be in the wallet: stored before `/wallet set` refused one, or before the
operator declared the server keyless (planted here in keyvault as the gateway stored it). It
is never used. Before, `/wallet test` had inference fetch it and send it to the server (which
took anything), and answered "works". Now the gateway answers at once that the provider takes
no key, the stored one is never used, and how to delete it: inference is asked nothing, the
server sees no request. And `/wallet list` (`tzurot wallet list`) says such a key is not used
(WalletKey.takes_no_key), on inference's word."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tzurot.testing.discord_e2e import USER_KEY, World, member_actor, running_bot
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc

from .cli_process import tzurot
from .keyless_mesh import LOCAL, keyless_world
from .keyless_mesh import local_server as local_server  # noqa: PLC0414  # the fixture

pytestmark = pytest.mark.e2e

STALE_KEY = "sk-stale-myllm-walletTest-4Kd8Vq"
ASKED_INFERENCE = "InferenceService/ValidateKey"
"""The gateway's check of a stored key (inference fetches it and asks the provider)."""
SERVED_TEST = "GatewayService/TestWalletKey"
"""The gateway's log line of the test's own call (rpc.served): its absence would mean the
services' logs were not captured, and ASKED_INFERENCE's absence would prove nothing."""


@pytest.fixture(scope="module")
async def keyless_mesh(
    local_server: FakeProvider, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    workdir = tmp_path_factory.mktemp("wallet-keyless-stale")
    async with keyless_world(postgres_url, workdir, local_server) as world:
        yield world


async def plant_key(world: World, actor: common.Actor) -> None:
    """A key for the keyless server in the user's wallet, as the gateway stored it before."""
    user = (await world.cli.GetUser(gw.GetUserRequest(actor=actor))).user
    vault = kv_grpc.KeyVaultServiceStub(await world.mesh.channel("gateway", "keyvault"))
    await vault.PutKey(kv.PutKeyRequest(user_id=user.id, provider=LOCAL, api_key=STALE_KEY))
    held = await world.cli.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor))
    assert [k.provider for k in held.keys] == [LOCAL]


async def test_through_discord_the_stored_key_is_not_tested_and_she_is_told_why(
    keyless_mesh: World, local_server: FakeProvider, capfd: pytest.CaptureFixture[str]
) -> None:
    world = keyless_mesh.scene()
    await plant_key(world, member_actor(world.alice))
    asked = len(local_server.requests)
    capfd.readouterr()  # what the set-up logged

    async with running_bot(world):
        tested = await world.discord.slash(
            world.general, world.alice, "wallet", {"provider": LOCAL}, subcommand=["test"]
        )
        text = await world.discord.wait_until(lambda: "".join(tested.texts()))

    assert tested.is_ephemeral()
    assert text == (
        f"{LOCAL} takes no API key: your stored {LOCAL} key is never used, so it was not "
        f"tested; /wallet remove {LOCAL} deletes it"
    )
    assert len(local_server.requests) == asked  # the server was never sent the key
    assert world.provider.requests == []
    logged = capfd.readouterr()
    assert SERVED_TEST in logged.out + logged.err  # the logs were captured: the test's call
    assert ASKED_INFERENCE not in logged.out + logged.err  # inference was asked nothing
    assert STALE_KEY not in logged.out + logged.err + text


async def test_through_the_cli_the_stored_key_is_not_tested_and_it_says_why(
    keyless_mesh: World, local_server: FakeProvider, capfd: pytest.CaptureFixture[str]
) -> None:
    world = keyless_mesh.scene()
    user = f"cli-{uuid.uuid4().hex[:8]}"
    await plant_key(world, common.Actor(user_id=f"cli:{user}", display_name=user))
    asked = len(local_server.requests)
    capfd.readouterr()

    code, out, err = await tzurot(world, "wallet", "test", LOCAL, "--user", user)

    assert code == 1, out + err
    assert out == ""
    assert err == (
        f"tzurot: [failed_precondition] {LOCAL} takes no API key: your stored {LOCAL} key is "
        f"never used, so it was not tested; tzurot wallet remove {LOCAL} deletes it\n"
    )
    assert len(local_server.requests) == asked
    logged = capfd.readouterr()
    assert SERVED_TEST in logged.out + logged.err  # the logs were captured
    assert ASKED_INFERENCE not in logged.out + logged.err
    assert STALE_KEY not in out + err + logged.out + logged.err


async def test_through_discord_wallet_list_says_the_key_is_not_used(
    keyless_mesh: World, capfd: pytest.CaptureFixture[str]
) -> None:
    world = keyless_mesh.scene()
    await plant_key(world, member_actor(world.alice))
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(
            actor=member_actor(world.alice), provider="openrouter", api_key=USER_KEY
        )
    )

    async with running_bot(world):
        listed = await world.discord.slash(
            world.general, world.alice, "wallet", {}, subcommand=["list"]
        )
        text = await world.discord.wait_until(lambda: "".join(listed.texts()))

    assert listed.is_ephemeral()
    assert text.split("\n") == [
        "Your API keys:",
        f"- **{LOCAL}** (…{STALE_KEY[-4:]}): not used: {LOCAL} takes no key; "
        f"`/wallet remove {LOCAL}` deletes it",
        f"- **openrouter** (…{USER_KEY[-4:]}): active",
    ]
    logged = capfd.readouterr()
    assert STALE_KEY not in logged.out + logged.err + text


async def test_through_the_cli_wallet_list_says_the_key_is_not_used(keyless_mesh: World) -> None:
    world = keyless_mesh.scene()
    user = f"cli-{uuid.uuid4().hex[:8]}"
    await plant_key(world, common.Actor(user_id=f"cli:{user}", display_name=user))

    code, out, err = await tzurot(world, "wallet", "list", "--user", user)

    assert code == 0, out + err
    (line,) = out.splitlines()
    assert line.startswith(f"{LOCAL:<12} …{STALE_KEY[-4:]}  created ")
    assert line.endswith(
        f"last used never  (not used: {LOCAL} takes no key; tzurot wallet remove {LOCAL} "
        "deletes it)"
    )
    assert STALE_KEY not in out + err
