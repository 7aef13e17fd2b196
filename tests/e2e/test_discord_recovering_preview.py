"""A gateway killed mid-answer for longer than its lease: the bot asks again at once, and the
gateway that gets the ask holds it until the cut run's lease ends (`_wait_for`). Meanwhile
the half answer in Discord used to stay as it was, frozen, with no sign of anything going on.
It now says, under it, that the answer is being taken up again; the answer taken up streams
into the same message, and the line is gone from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tzurot.bot.answer_restarts import RECOVERING_LINE
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls
from tzurot.testing.discord_e2e import World, running_bot, settled
from tzurot.testing.processes import ServiceProcess, gateway_process
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

pytestmark = pytest.mark.e2e

LEASE = 3.0
STORY = " ".join(f"s{i:02d}" for i in range(24))
"""24 words, streamed one every half second: still streaming when its gateway is killed."""


@pytest.fixture
async def replica(world: World, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    """A gateway replica of its own (a process, so that SIGKILL kills it), with a short
    lease; the mesh's own gateway is the other replica (its sweep fails the orphan)."""
    process = gateway_process(
        world.mesh,
        tmp_path / "gateway.log",
        {"TZUROT_JOB_LEASE_SECONDS": str(LEASE), "TZUROT_DUPLICATE_WAIT_SECONDS": "8"},
    )
    await process.start(world.mesh.pki)
    try:
        yield process
    finally:
        await process.stop()


@contextlib.asynccontextmanager
async def client_of(world: World, process: ServiceProcess) -> AsyncIterator[GatewayClient]:
    """A bot's gateway client, to that replica only, waiting for it while it is away."""
    async with secure_channel(
        process.addr,
        load_tls(world.mesh.pki / "bot"),
        server_identity="gateway",
        default_timeout=60,
        wait_for_ready=True,
    ) as channel:
        yield GatewayClient(gw_grpc.GatewayServiceStub(channel), generate_timeout=60)


async def preview_noted(world: World, key: str) -> None:
    for _ in range(400):
        with contextlib.suppress(Exception):
            reply = await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=key))
            if reply.job.preview_message_ids:
                return
        await asyncio.sleep(0.05)
    raise TimeoutError("no preview was noted")


async def test_a_half_answer_says_it_is_being_recovered_while_its_gateway_is_away(
    world: World, replica: ServiceProcess
) -> None:
    await world.set_key(world.alice)
    world.provider.reply, world.provider.chunk_delay = STORY, 0.5

    async with (
        client_of(world, replica) as client,
        running_bot(world, gateway=client) as bot,
    ):
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a story")
        key = f"{said.id}:lilith"
        await preview_noted(world, key)
        (preview,) = world.discord.webhook_messages(world.general)
        await replica.signal(signal.SIGKILL)  # gone, its job `running` for its lease
        await replica.wait()
        half = preview.content
        # While the gateway is away (and then while the ask waits out the lease), the half
        # answer says so.
        await world.discord.wait_until(lambda: preview.content.endswith(RECOVERING_LINE))
        recovering = preview.content
        world.provider.chunk_delay = 0.0
        await replica.start(world.mesh.pki)  # the same address: the waiting ask goes there
        job = await world.delivered(key, within=60)
        await settled(world, bot)

    assert STORY not in half
    assert RECOVERING_LINE not in half
    assert recovering.startswith(half.rstrip())  # the half answer kept, the line under it
    assert world.discord.webhook_messages(world.general) == [preview]  # nothing posted anew
    assert preview.content.endswith(STORY)
    assert RECOVERING_LINE not in preview.content
    assert preview.content.count(STORY) == 1
    assert list(job.delivered_message_ids) == [str(preview.id)]
    assert job.attempts == 2


async def test_a_half_answer_whose_final_edit_is_lost_ends_whole_without_the_line(
    world: World, replica: ServiceProcess
) -> None:
    """Discord refuses the edits after the line (a 429 discord.py hands over, without `Via`)
    and the final one never gets an answer (the connection dropped): the message used to keep
    the half answer and "picking the answer up again…" for good, the answer delivered so. The
    final edit is made again, after the 429's wait: the whole answer shows, without the line."""
    await world.set_key(world.alice)
    world.provider.reply, world.provider.chunk_delay = STORY, 0.5

    async with (
        client_of(world, replica) as client,
        running_bot(world, gateway=client) as bot,
    ):
        said = await world.discord.say(world.general, world.alice, "@Lilith tell me a story")
        key = f"{said.id}:lilith"
        await preview_noted(world, key)
        (preview,) = world.discord.webhook_messages(world.general)
        await replica.signal(signal.SIGKILL)
        await replica.wait()
        await world.discord.wait_until(lambda: preview.content.endswith(RECOVERING_LINE))
        limited = {"message": "You are being rate limited.", "retry_after": 1.0, "global": False}
        world.discord.fail_next("edit_webhook_message", 429, limited)
        world.discord.drop_next("edit_webhook_message")
        world.provider.chunk_delay = 0.0
        await replica.start(world.mesh.pki)
        job = await world.delivered(key, within=60)
        await settled(world, bot)

    assert world.discord.faults["edit_webhook_message"] == []  # both met
    assert world.discord.webhook_messages(world.general) == [preview]
    assert preview.content.endswith(STORY)
    assert RECOVERING_LINE not in preview.content
    assert list(job.delivered_message_ids) == [str(preview.id)]
