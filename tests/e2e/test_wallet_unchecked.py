"""A key stored without a call proving it is said to be unchecked, through the whole mesh:
gateway's `SetWalletKeyResponse.unchecked`, told by the real bot to the user in her private
reply to the key form, and by the real `tzurot` command (a process, over mTLS as `cli`).

Brave Search has no free check: inference checks only the key's form, so nothing reaches
the fake Brave until the key is tested (one search), which both replies say how to do."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import USER_KEY, World, discord_world, running_bot
from tzurot.testing.fake_web import FakeBrave

from .cli_process import tzurot

pytestmark = pytest.mark.e2e

DISCORD_KEY = "BSAplantedDiscordKey4r8Tn2Vw6"
CLI_KEY = "BSAplantedCliBraveKey7k3Mp9Qz"


@dataclass
class BraveWorld:
    world: World
    brave: FakeBrave


@pytest.fixture(scope="module")
async def brave_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BraveWorld]:
    """The mesh with Brave as inference's web search backend (so a Brave key may be set)."""
    async with FakeBrave({DISCORD_KEY, CLI_KEY}) as brave:
        database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
        async with discord_world(
            database,
            tmp_path_factory.mktemp("wallet-unchecked"),
            inference={"search_backend": "brave", "brave_url": brave.base_url},
        ) as world:
            yield BraveWorld(world, brave)


@pytest.fixture
def scene(brave_mesh: BraveWorld) -> BraveWorld:
    brave_mesh.brave.requests.clear()
    return BraveWorld(brave_mesh.world.scene(), brave_mesh.brave)


async def test_through_discord_a_brave_key_is_said_to_be_stored_unchecked(
    scene: BraveWorld, capfd: pytest.CaptureFixture[str]
) -> None:
    world, brave = scene.world, scene.brave
    async with running_bot(world):
        opened = await world.discord.slash(
            world.general, world.alice, "wallet", {"provider": "brave"}, subcommand=["set"]
        )
        modal = await world.discord.wait_until(opened.modal)
        assert modal["title"] == "Your brave API key"
        submitted = await world.discord.submit_modal(opened, world.alice, {"api_key": DISCORD_KEY})
        text = await world.discord.wait_until(lambda: "".join(submitted.texts()))
    assert submitted.is_ephemeral()
    assert text == (
        f"Saved your brave key (…{DISCORD_KEY[-4:]}). It is stored encrypted. Brave Search has "
        "no free check, so it was not tried: its first use checks it (`/wallet test brave` "
        "checks it now, at the cost of one call)."
    )
    assert brave.requests == []  # stored untried
    logged = capfd.readouterr()
    assert DISCORD_KEY not in logged.out + logged.err
    assert not any(DISCORD_KEY in str(r) for r in submitted.responses)


async def test_through_the_cli_a_brave_key_is_said_to_be_stored_unchecked(
    scene: BraveWorld,
) -> None:
    world, brave = scene.world, scene.brave
    user = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = await tzurot(
        world, "wallet", "set", "brave", "--user", user, "--key-stdin", stdin=CLI_KEY
    )
    assert code == 0, out + err
    assert out == (
        f"Stored your brave key (…{CLI_KEY[-4:]}).\n"
        "It was stored unchecked (brave has no free check): its first use checks it; "
        "`tzurot wallet test brave` checks it now, at the cost of one call.\n"
    )
    assert brave.requests == []

    # The command it names checks the key now, with one search.
    code, tested, err = await tzurot(world, "wallet", "test", "brave", "--user", user)
    assert code == 0, tested + err
    assert tested.startswith("brave: the key works")
    assert len(brave.requests) == 1
    for said in (out, err, tested):
        assert CLI_KEY not in said

    # A key checked with its provider says nothing of the kind.
    code, out, err = await tzurot(
        world, "wallet", "set", "openrouter", "--user", user, "--key-stdin", stdin=USER_KEY
    )
    assert code == 0, out + err
    assert out.startswith("Stored your openrouter key")
    assert "unchecked" not in out
