"""A key pasted into /wallet's `provider` option, through the fake Discord, the real bot and
the whole mesh: it is echoed in no reply, sent to no other service, logged nowhere and kept
in no table (keyvault's audit log included). One shaped like a provider's name may be the
operator's own provider, which only the gateway knows: `set` opens an untitled form and the
gateway refuses it (nor is the key typed into that form kept or logged); one no provider's
name can be opens no form. The same for an older bot or a CLI that passes the option on
unchecked (the gateway refuses it), and for a key with a line break typed into the key form
(refused before any provider call, never quoted)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc
import pytest
import sqlalchemy as sa
import structlog

from tzurot.db.engine import create_engine
from tzurot.runtime.logging import configure_logging
from tzurot.testing.discord_e2e import World, member_actor, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

pytestmark = pytest.mark.e2e

# Both fit keyvault's provider pattern (lowercase, at most 64 characters), as an ElevenLabs
# key does; the first is shaped like no vendor key, so only its absence (not the log
# redactor) passes.
TYPED_KEYS = ("plantedwalletkey0q7f3e9c1a5b2d4e6f8", "sk_" + "0123456789abcdef" * 3)
LONG_KEY = "sk-or-v1-planted" + "0a1b2c3d" * 8
"""Longer than any provider's name (64 characters), as an OpenRouter key is."""
FORM_KEY = "plantedFORMkey7Wm3Xv9Rt2Lp8Ny4"
"""The key typed into the untitled form opened for a name the gateway then refuses."""
BROKEN_KEY = "plantedLINEkey0q7f3e9c1\na5b2d4e6f8"


@pytest.fixture
def all_logs() -> Iterator[None]:
    """Every service's logs at DEBUG as JSON on stderr (they all run in this process), with
    discord.py held at INFO as the bot's entry point holds it (its DEBUG logs every gateway
    event whole, an interaction's options included)."""
    root, discord_log = logging.getLogger(), logging.getLogger("discord")
    handlers, level, discord_level = list(root.handlers), root.level, discord_log.level
    configure_logging("mesh", level="DEBUG", fmt="json")
    discord_log.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        discord_log.setLevel(discord_level)
        structlog.reset_defaults()


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    return "\n".join(t for t in interaction.texts() if t)


async def rows_holding(database_url: str, text: str) -> list[str]:
    """`schema.table` of every table with a text-like column whose value contains `text`,
    and every keyvault audit row's columns checked by name."""
    engine = create_engine(database_url)
    found: list[str] = []
    try:
        async with engine.connect() as conn:
            columns = (
                await conn.execute(
                    sa.text(
                        "SELECT table_schema, table_name, column_name "
                        "FROM information_schema.columns c JOIN information_schema.tables t "
                        "USING (table_schema, table_name) WHERE t.table_type = 'BASE TABLE' "
                        "AND table_schema NOT IN ('pg_catalog', 'information_schema') "
                        "AND data_type <> 'bytea'"
                    )
                )
            ).all()
            assert any(s == "vault" and t == "audit_log" for s, t, _ in columns)
            for schema, table, column in columns:
                hits = await conn.scalar(
                    sa.text(
                        f'SELECT count(*) FROM "{schema}"."{table}" '  # noqa: S608
                        f'WHERE position(:t in "{column}"::text) > 0'
                    ),
                    {"t": text},
                )
                if hits:
                    found.append(f"{schema}.{table}.{column}")
            audited = await conn.scalar(sa.text("SELECT count(*) FROM vault.audit_log"))
            assert audited  # keyvault did audit this run's calls
    finally:
        await engine.dispose()
    return found


@pytest.mark.usefixtures("all_logs")
async def test_a_key_typed_as_the_provider_goes_nowhere(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    await world.set_key(world.alice)  # she holds a key: remove and test have one to look at
    replies: list[str] = []
    async with running_bot(world):
        for typed in TYPED_KEYS:
            # It could be the operator's own provider: an untitled form, the gateway decides.
            opened = await world.discord.slash(
                world.general, world.alice, "wallet", {"provider": typed}, subcommand=["set"]
            )
            await world.discord.wait_until(opened.modal)
            assert (opened.modal() or {})["title"] == "Your API key"
            submitted = await world.discord.submit_modal(opened, world.alice, {"api_key": FORM_KEY})
            text = await answered(world, submitted)
            assert text.startswith("Your key was not saved: unknown provider; known: "), text
            assert submitted.is_ephemeral()
            replies.append(text)
            for command in ("remove", "test"):
                asked = await world.discord.slash(
                    world.general, world.alice, "wallet", {"provider": typed}, subcommand=[command]
                )
                text = await answered(world, asked)
                assert text.startswith("Unknown provider; known: "), (command, text)
                assert asked.modal() is None
                assert asked.is_ephemeral()
                replies.append(text)
        for command in ("set", "remove", "test"):  # no provider's name: no form at all
            asked = await world.discord.slash(
                world.general, world.alice, "wallet", {"provider": LONG_KEY}, subcommand=[command]
            )
            text = await answered(world, asked)
            assert text.startswith("Unknown provider; known: "), (command, text)
            assert asked.modal() is None
            replies.append(text)

        # A key with a line break typed into the form (a modified client can send one).
        opened = await world.discord.slash(
            world.general, world.alice, "wallet", {"provider": "elevenlabs"}, subcommand=["set"]
        )
        await world.discord.wait_until(opened.modal)
        submitted = await world.discord.submit_modal(opened, world.alice, {"api_key": BROKEN_KEY})
        text = await answered(world, submitted)
        assert "was not saved" in text
        assert "whitespace or control characters" in text
        replies.append(text)

    # An older bot, or the CLI, passing the option on unchecked: the gateway refuses it.
    bot = gw_grpc.GatewayServiceStub(await world.mesh.channel("bot"))
    alice = member_actor(world.alice)
    errors: list[grpc.aio.AioRpcError] = []
    for stub in (bot, world.cli):
        for typed in TYPED_KEYS:
            for call in (
                stub.SetWalletKey(
                    gw.SetWalletKeyRequest(actor=alice, provider=typed, api_key="sk-or-x" * 4)
                ),
                stub.RemoveWalletKey(gw.RemoveWalletKeyRequest(actor=alice, provider=typed)),
                stub.TestWalletKey(gw.TestWalletKeyRequest(actor=alice, provider=typed)),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call
                assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert (caught.value.details() or "").startswith("unknown provider; known: ")
                errors.append(caught.value)

    keys = await world.cli.ListWalletKeys(gw.ListWalletKeysRequest(actor=alice))
    assert [k.provider for k in keys.keys] == ["openrouter"]  # nothing removed, nothing added
    logged = capfd.readouterr()
    logs = logged.out + logged.err
    assert "RemoveWalletKey" in logs  # the pipeline did capture the mesh's logs
    seen = [
        *replies,
        *(str(r) for i in world.discord.interactions.values() for r in i.responses),
        *(str(m.data) for posted in world.discord.messages.values() for m in posted),
        *(f"{e.details()} {e.trailing_metadata()}" for e in errors),
        logs,
    ]
    for typed in (*TYPED_KEYS, LONG_KEY, FORM_KEY, BROKEN_KEY):
        fragment = typed.split("\n")[0][:16]
        assert not any(fragment in text for text in seen), fragment
        assert await rows_holding(world.mesh.database_url, fragment) == []
