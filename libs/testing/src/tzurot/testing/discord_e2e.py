"""End to end through Discord: the fake Discord, the real bot, and the whole mesh behind it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import discord
import grpc
from discord.gateway import DiscordWebSocket
from pydantic import SecretStr

from tzurot.bot.bot import TzurotBot
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient
from tzurot.cli.localdb import create_database
from tzurot.testing.fake_discord import FakeDiscord, Json
from tzurot.testing.fake_elevenlabs import FakeElevenLabs
from tzurot.testing.fake_provider import FakeProvider, echo_reply
from tzurot.testing.mesh import InProcessMesh, in_process_mesh
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

USER_KEY = "sk-or-alice-key-0123456789abcdef"
LILITH_SEED = b"""
name: Lilith
aliases: [lil, the night queen]
avatar_url: https://example.com/lilith.png
system_prompt: You are Lilith, a test personality.
llm: {provider: openrouter, model: fake/lilith}
error_message: "*Lilith's candle gutters.*"
public: true
"""
SAGE_SEED = b"""
name: Sage
system_prompt: You are Sage.
llm: {provider: openrouter, model: fake/sage}
error_message: "*Sage frowns.*"
"""


@dataclass
class World:
    """One Discord server with a #general channel and two users, Alice and Bob."""

    discord: FakeDiscord
    provider: FakeProvider
    mesh: InProcessMesh
    cli: gw_grpc.GatewayServiceAsyncStub
    guild: Json
    general: Json
    alice: Json
    bob: Json

    def scene(self) -> World:
        """A new channel and new users in the same server, so tests sharing a mesh stay apart."""
        fake = self.discord
        # What Discord refused or rate limited is this scene's own: a module's earlier test
        # (sharing the fake, its global bucket included) does not show in it.
        fake.refusals.clear()
        fake.rate_limited.clear()
        self.provider.reply = echo_reply
        self.provider.chunk_delay = 0.0
        self.provider.hold = None
        self.provider.hold_key_checks = None
        self.provider.key_checking.clear()
        self.provider.spent_keys.clear()
        return replace(
            self,
            general=fake.add_channel(self.guild, "general", topic="chatting about anything"),
            alice=fake.make_user("alice"),
            bob=fake.make_user("bob"),
        )

    async def delivered(self, idempotency_key: str, within: float = 30.0) -> gw.Job:
        """Waits until the job for `idempotency_key` is delivered (the bot is done with it)."""
        for _ in range(int(within / 0.05)):
            try:
                reply = await self.cli.GetJobStatus(
                    gw.GetJobStatusRequest(idempotency_key=idempotency_key)
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.NOT_FOUND:  # not sent by the bot yet
                    raise
            else:
                if reply.job.status == common.JOB_STATUS_DELIVERED:
                    return reply.job
            await asyncio.sleep(0.05)
        raise TimeoutError(f"job {idempotency_key!r} was not delivered within {within}s")

    async def memory_ready(self, within: float = 600.0) -> None:
        """Waits until long-term memory answers a search: its local embedding model loads
        in the background at start, which on a busy machine outlasts one RPC deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            try:
                await self.cli.SearchMemories(
                    gw.SearchMemoriesRequest(
                        actor=member_actor(self.alice), personality="lilith", query="x"
                    ),
                    timeout=60,
                )
                return
            except grpc.aio.AioRpcError as exc:
                retry = {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
                if exc.code() not in retry or loop.time() > deadline:
                    raise

    async def set_key(self, who: Json, key: str = USER_KEY) -> None:
        await self.cli.SetWalletKey(
            gw.SetWalletKeyRequest(actor=member_actor(who), provider="openrouter", api_key=key)
        )


def member_actor(user: Json) -> common.Actor:
    """The actor the bot sends for a Discord user of the fake (their id and username)."""
    return common.Actor(user_id=str(user["id"]), display_name=str(user["username"]))


async def slash_text(
    world: World, user: Json, command: str, *subcommand: str, **options: object
) -> str:
    """What `user`'s slash command in #general answered (its text, once there is some)."""
    done = await world.discord.slash(world.general, user, command, options, subcommand=subcommand)
    await world.discord.wait_until(lambda: any(done.texts()), within=30)
    return "".join(done.texts())


class RecordingGateway(gw_grpc.GatewayServiceServicer):
    """Sits between the bot and the real gateway and keeps every GenerateRequest it forwards."""

    def __init__(self, upstream: gw_grpc.GatewayServiceAsyncStub) -> None:
        self.upstream = upstream
        self.generated: list[gw.GenerateRequest] = []

    async def Generate(self, request: gw.GenerateRequest, context: Any) -> Any:
        self.generated.append(request)
        async for event in self.upstream.Generate(request):
            yield event

    async def ConfirmDelivery(self, request: gw.ConfirmDeliveryRequest, context: Any) -> Any:
        return await self.upstream.ConfirmDelivery(request)

    async def NoteAnswerPreview(self, request: gw.NoteAnswerPreviewRequest, context: Any) -> Any:
        return await self.upstream.NoteAnswerPreview(request)

    async def ListPersonalities(self, request: gw.ListPersonalitiesRequest, context: Any) -> Any:
        return await self.upstream.ListPersonalities(request)

    async def GetPersonality(self, request: gw.GetPersonalityRequest, context: Any) -> Any:
        return await self.upstream.GetPersonality(request)

    async def ResolveMentions(self, request: gw.ResolveMentionsRequest, context: Any) -> Any:
        try:
            return await self.upstream.ResolveMentions(request)
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details() or "")

    async def GetChannelActivation(
        self, request: gw.GetChannelActivationRequest, context: Any
    ) -> Any:
        try:
            return await self.upstream.GetChannelActivation(request)
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details() or "")


@asynccontextmanager
async def recording_gateway(
    world: World,
    kind: Callable[[gw_grpc.GatewayServiceAsyncStub], RecordingGateway] = RecordingGateway,
) -> AsyncIterator[tuple[RecordingGateway, GatewayClient]]:
    """A recording hop (`kind`, which may also delay or alter calls) to the mesh's gateway on
    loopback, and a bot-side client for it."""
    # Forwards only what the bot calls; the generated base answers UNIMPLEMENTED for the rest.
    recorder = kind(await world.mesh.gateway_stub("bot"))
    server = grpc.aio.server()
    gw_grpc.add_GatewayServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield recorder, GatewayClient(gw_grpc.GatewayServiceStub(channel), generate_timeout=60)
    finally:
        await channel.close()
        await server.stop(None)


@asynccontextmanager
async def discord_world(
    database_url: str,
    workdir: Path,
    *,
    inference: Mapping[str, Any] | None = None,
    gateway: Mapping[str, Any] | None = None,
    **mesh_options: Any,
) -> AsyncIterator[World]:
    """The mesh with Lilith and Sage seeded, a fake provider and a fake Discord (bot not yet).

    `inference` overrides inference's settings (e.g. skills: search backend, fetch allow-list);
    `gateway` overrides gateway's (e.g. `public_url`).
    `mesh_options` go to `in_process_mesh` too (gateway settings, a gateway clock).
    """
    async with (
        FakeProvider(valid_keys={USER_KEY}, any_model=True) as provider,
        in_process_mesh(
            database_url, workdir, provider, inference=inference, gateway=gateway, **mesh_options
        ) as mesh,
        FakeDiscord() as fake,
    ):
        # Discord's IDENTIFY window is 5 s; a shorter one keeps multi-shard tests quick while
        # the bot still has to honour it.
        fake.identify_window = 0.3
        cli = await mesh.gateway_stub("cli")
        for seed in (LILITH_SEED, SAGE_SEED):
            await cli.ImportPersonality(
                gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=seed)
            )
        guild = fake.add_guild("Test Server")
        general = fake.add_channel(guild, "general", topic="chatting about anything")
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        yield World(fake, provider, mesh, cli, guild, general, alice, bob)


@dataclass
class VoiceWorld:
    """A world whose inference speaks to a fake ElevenLabs, on a database of its own."""

    world: World
    eleven: FakeElevenLabs
    database: str


@asynccontextmanager
async def voice_world(
    postgres_url: str, workdir: Path, *, gateway: Mapping[str, Any] | None = None
) -> AsyncIterator[VoiceWorld]:
    """`discord_world` on a new database of the server at `postgres_url`, its inference's
    ElevenLabs a fake one; `gateway` overrides gateway's settings."""
    async with FakeElevenLabs() as eleven:
        database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
        async with discord_world(
            database, workdir, inference={"elevenlabs_url": eleven.base_url}, gateway=gateway
        ) as world:
            yield VoiceWorld(world, eleven, database)


async def settled(world: World, bot: TzurotBot, channel: Json | None = None) -> None:
    """The barrier before asserting that nothing happened: every event sent so far has been
    handled to its end. A `/help` asked now travels the same shard socket after them, and
    discord.py starts event handlers in arrival order; once it is answered every earlier
    handler has started, and `flow.idle` waits until none is still running. No sleep."""
    asked = await world.discord.slash(channel or world.general, world.bob, "help")
    await world.discord.wait_until(lambda: any(asked.texts()))
    assert bot.flow is not None
    await bot.flow.idle(30)


@asynccontextmanager
async def running_bot(
    world: World, *, gateway: GatewayClient | None = None, **overrides: Any
) -> AsyncIterator[TzurotBot]:
    """The real bot, connected to the fake Discord and to the mesh's gateway as `bot`."""
    options: dict[str, Any] = {
        "tls_dir": world.mesh.pki / "bot",
        "discord_token": SecretStr(world.discord.token),
        "discord_api_base": world.discord.api_base,
        "gateway_addr": world.mesh.gateway_addr,
        "guild_ready_timeout_seconds": 0.05,
        "identify_delay_seconds": world.discord.identify_window,
        "pluralkit_enabled": False,
        "dev_guild_id": int(world.guild["id"]),
    }
    settings = BotSettings(**{**options, **overrides})
    if gateway is None:
        channel = await world.mesh.channel("bot")
        gateway = GatewayClient(gw_grpc.GatewayServiceStub(channel), generate_timeout=60)
    saved = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    bot = TzurotBot(gateway, settings)
    task = asyncio.create_task(bot.start(world.discord.token))
    try:
        await world.discord.wait_until(lambda: task.done() or bot.is_ready())
        if task.done():
            task.result()
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved
