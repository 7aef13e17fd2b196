"""`/wallet set` for a provider that takes no key is refused, through the fake Discord and the
real bot, and through the real `tzurot wallet set` (a process, over mTLS as `cli`).

The operator's `TZUROT_PROVIDERS` declares a local chat server (`my-llm`: `"keyless": true`);
`ollama` is a built-in local server, keyless too. Review: the gateway checked a key for either
with the server (which took anything) and stored it: its owner paid nothing with it and it was
never sent, yet she believed it was her key at work. Now the gateway refuses it, naming the
provider and saying it takes no key, before the server is asked anything, and no key row is
written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import World, member_actor, running_bot
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import gateway_pb2 as gw

from .cli_process import tzurot
from .keyless_mesh import LOCAL, keyless_world
from .keyless_mesh import local_server as local_server  # noqa: PLC0414  # the fixture

pytestmark = pytest.mark.e2e

DISCORD_KEY = "plantedDiscordKeyForKeyless7q3"
CLI_KEY = "plantedCliKeyForKeyless9w4Zr"


@pytest.fixture(scope="module")
async def keyless_mesh(
    local_server: FakeProvider, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    workdir = tmp_path_factory.mktemp("wallet-keyless")
    async with keyless_world(postgres_url, workdir, local_server) as world:
        yield world


async def key_rows(world: World) -> int:
    """Keyvault's stored keys, any user's, any provider's."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(sa.text("SELECT count(*) FROM vault.api_keys")) or 0)
    finally:
        await engine.dispose()


async def set_through_discord(world: World, provider: str) -> tuple[str, str]:
    """`/wallet set <provider>`, the key typed into its form: the form's title and the
    private reply."""
    async with running_bot(world):
        opened = await world.discord.slash(
            world.general, world.alice, "wallet", {"provider": provider}, subcommand=["set"]
        )
        modal = await world.discord.wait_until(opened.modal)
        submitted = await world.discord.submit_modal(opened, world.alice, {"api_key": DISCORD_KEY})
        text = await world.discord.wait_until(lambda: "".join(submitted.texts()))
    assert submitted.is_ephemeral()
    assert not any(DISCORD_KEY in str(r) for r in submitted.responses)
    return modal["title"], text


@pytest.mark.parametrize(
    ("provider", "named"),
    [
        (LOCAL, False),  # the operator's: the bot knows it not, so names it not
        ("ollama", True),  # built in
    ],
)
async def test_through_discord_a_key_for_a_keyless_provider_is_refused_and_not_stored(
    keyless_mesh: World,
    local_server: FakeProvider,
    capfd: pytest.CaptureFixture[str],
    provider: str,
    named: bool,
) -> None:
    world = keyless_mesh.scene()
    asked = len(local_server.requests)

    title, text = await set_through_discord(world, provider)

    assert title == (f"Your {provider} API key" if named else "Your API key")
    whose = f"{provider} key" if named else "key"
    assert text == (
        f"Your {whose} was not saved: {provider} takes no API key; it is used without one, "
        "so none is stored"
    )
    held = await world.cli.ListWalletKeys(gw.ListWalletKeysRequest(actor=member_actor(world.alice)))
    assert list(held.keys) == []
    assert await key_rows(world) == 0
    assert len(local_server.requests) == asked  # the server was never asked to check it
    assert world.provider.requests == []
    logged = capfd.readouterr()
    assert DISCORD_KEY not in logged.out + logged.err


async def test_through_the_cli_a_key_for_a_keyless_provider_is_refused_and_not_stored(
    keyless_mesh: World, local_server: FakeProvider
) -> None:
    world = keyless_mesh.scene()
    user = f"cli-{uuid.uuid4().hex[:8]}"
    asked = len(local_server.requests)

    code, out, err = await tzurot(
        world, "wallet", "set", LOCAL, "--user", user, "--key-stdin", stdin=CLI_KEY
    )

    assert code == 1, out + err
    assert out == ""
    assert err == (
        f"tzurot: [invalid_argument] {LOCAL} takes no API key; it is used without one, "
        "so none is stored\n"
    )
    code, listed, err = await tzurot(world, "wallet", "list", "--user", user)
    assert code == 0, listed + err
    assert listed.startswith("No keys stored.")
    assert await key_rows(world) == 0
    assert len(local_server.requests) == asked
    assert CLI_KEY not in out + err + listed
