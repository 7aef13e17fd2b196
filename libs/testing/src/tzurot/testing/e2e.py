"""End-to-end helpers: a mesh with one seeded personality, and the bot's side of a chat."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.mesh import InProcessMesh, in_process_mesh
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

USER_KEY = "sk-or-user-key-0123456789abcdef"
SYSTEM_PROMPT = "You are Echo, a test personality who repeats what you hear."

ECHO_SEED = f"""
name: Echo
aliases: [the mirror]
system_prompt: {SYSTEM_PROMPT}
llm: {{provider: openrouter, model: fake/echo}}
error_message: "Echo went quiet:"
""".encode()


@dataclass
class Harness:
    mesh: InProcessMesh
    provider: FakeProvider
    bot: gw_grpc.GatewayServiceAsyncStub
    cli: gw_grpc.GatewayServiceAsyncStub


def actor(name: str = "alice") -> common.Actor:
    return common.Actor(user_id=f"discord:{name}", display_name=name.title())


def request(
    content: str, *, who: str = "alice", channel: str = "chan-1", key: str = ""
) -> gw.GenerateRequest:
    message_id = key or f"msg-{uuid.uuid4().hex[:12]}"
    return gw.GenerateRequest(
        actor=actor(who),
        location=common.Location(guild_id="guild-1", channel_id=channel),
        personality="Echo",
        content=content,
        idempotency_key=message_id,
        message_ids=[message_id],
    )


NO_RATE_LIMITS = {"rate_user_capacity": 0, "rate_channel_capacity": 0}
"""Gateway settings for load runs (benchmarks), where one user sends many messages."""

HELPER_MODELS_ON_USER_KEY = {
    "attachment_hosts": ["127.0.0.1"],
    "transcription_provider": "openrouter",
}
"""Inference settings: attachments read from loopback (`tzurot.testing.cdn`), and every
helper model (image description, transcription) on the user's one (openrouter) key."""


@asynccontextmanager
async def echo_mesh(
    database_url: str,
    workdir: Path,
    *,
    gateway: Mapping[str, Any] | None = None,
    inference: Mapping[str, Any] | None = None,
    provider: FakeProvider | None = None,
) -> AsyncIterator[Harness]:
    """The mesh with personality Echo (openrouter, model fake/echo) and a fake provider
    (`provider`: one already running, accepting USER_KEY; else one started here)."""
    async with AsyncExitStack() as stack:
        if provider is None:
            provider = await stack.enter_async_context(FakeProvider(valid_keys={USER_KEY}))
        mesh = await stack.enter_async_context(
            in_process_mesh(database_url, workdir, provider, gateway=gateway, inference=inference)
        )
        cli = await mesh.gateway_stub("cli")
        await cli.ImportPersonality(
            gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=ECHO_SEED)
        )
        yield Harness(mesh, provider, await mesh.gateway_stub("bot"), cli)


async def set_key(h: Harness, key: str = USER_KEY, who: str = "alice") -> None:
    await h.bot.SetWalletKey(
        gw.SetWalletKeyRequest(actor=actor(who), provider="openrouter", api_key=key)
    )


async def converse(h: Harness, req: gw.GenerateRequest) -> tuple[list[gw.GenerateResponse], str]:
    """Streams one answer and confirms its delivery, as the bot does after posting it."""
    events = [event async for event in h.bot.Generate(req)]
    job_id = events[0].accepted.job_id
    await h.bot.ConfirmDelivery(
        gw.ConfirmDeliveryRequest(job_id=job_id, message_ids=[f"reply-{job_id}"])
    )
    return events, job_id
