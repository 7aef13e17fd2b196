"""A gateway that stops leaves no job `running`: SIGTERM releases its jobs at once, and after
SIGKILL a resend of the same message takes the orphan over when its lease runs out, or says it
is in progress, never a silent long wait (issue #14).

The gateway under test is a real process (`python -m tzurot.gateway`) beside the in-process
mesh, which keeps its own gateway replica: the one a resend reaches after the first is gone.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tzurot.runtime.client import secure_channel
from tzurot.runtime.errors import from_rpc_error
from tzurot.runtime.tls import load_tls
from tzurot.testing.e2e import Harness, echo_mesh, request, set_key
from tzurot.testing.postgres import DatabaseFactory
from tzurot.testing.processes import ServiceProcess, gateway_process
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

pytestmark = pytest.mark.e2e

LEASE = 2.0
SLOW_ANSWER = " ".join(f"w{i}" for i in range(80))  # 80 chunks, 0.2 s apart: ~16 s


@pytest.fixture
async def mesh(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    replica = {"job_lease_seconds": LEASE, "duplicate_wait_seconds": 4.0}
    async with echo_mesh(fresh_database(), tmp_path, gateway=replica) as h:
        await set_key(h)
        yield h


@pytest.fixture
async def gateway(mesh: Harness, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    process = gateway_process(
        mesh.mesh,
        tmp_path / "gateway.log",
        {"TZUROT_GRACE_SECONDS": "0.5", "TZUROT_JOB_LEASE_SECONDS": str(LEASE)},
    )
    await process.start(mesh.mesh.pki)
    try:
        yield process
    finally:
        await process.stop()


# The channels stubs use, kept alive: a stub holds only the channel's calls, and a grpc.aio
# Channel that is garbage collected closes itself ("Channel is closed" on the next call).
_channels: list[grpc.aio.Channel] = []


def stub(h: Harness, process: ServiceProcess) -> gw_grpc.GatewayServiceAsyncStub:
    channel = secure_channel(
        process.addr, load_tls(h.mesh.pki / "bot"), server_identity="gateway", default_timeout=60
    )
    _channels.append(channel)
    return gw_grpc.GatewayServiceStub(channel)


async def job_of(h: Harness, key: str) -> gw.Job:
    return (await h.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=key))).job


async def start_streaming(client: gw_grpc.GatewayServiceAsyncStub, req: gw.GenerateRequest) -> Any:
    """Starts a Generate and reads until the first chunk of the answer has arrived."""
    call = client.Generate(req)
    async for event in call:
        if event.HasField("chunk"):
            return call
    raise AssertionError("the answer ended before it streamed")


async def test_sigterm_releases_the_running_job_and_a_resend_is_answered_at_once(
    mesh: Harness, gateway: ServiceProcess
) -> None:
    mesh.provider.reply, mesh.provider.chunk_delay = SLOW_ANSWER, 0.2
    req = request("tell me a long story")
    call = await start_streaming(stub(mesh, gateway), req)
    assert (await job_of(mesh, req.idempotency_key)).status == common.JOB_STATUS_RUNNING

    await gateway.signal(signal.SIGTERM)
    with pytest.raises(grpc.aio.AioRpcError):
        async for _ in call:
            pass
    assert await gateway.wait() == 0

    job = await job_of(mesh, req.idempotency_key)
    assert job.status == common.JOB_STATUS_FAILED  # not left running for a lease
    assert (job.error.code, job.error.reason) == ("UNAVAILABLE", "GATEWAY_RESTARTING")
    assert "send the message again" in job.error.message

    mesh.provider.chunk_delay = 0.0
    await gateway.start(mesh.mesh.pki)  # the restarted gateway, on the same address
    events = [e async for e in stub(mesh, gateway).Generate(req)]
    assert events[-1].finished.content == SLOW_ANSWER
    job = await job_of(mesh, req.idempotency_key)
    assert (job.status, job.attempts) == (common.JOB_STATUS_STREAMED, 2)


async def test_after_sigkill_a_resend_takes_the_orphan_over_once_its_lease_ends(
    mesh: Harness, gateway: ServiceProcess
) -> None:
    mesh.provider.reply, mesh.provider.chunk_delay = SLOW_ANSWER, 0.2
    req = request("tell me a long story")
    call = await start_streaming(stub(mesh, gateway), req)
    await gateway.signal(signal.SIGKILL)
    await gateway.wait()
    call.cancel()
    orphan = await job_of(mesh, req.idempotency_key)
    assert orphan.status == common.JOB_STATUS_RUNNING  # nobody could say otherwise

    mesh.provider.chunk_delay = 0.0
    # The other replica: the duplicate waits for the lease (2 s) to run out, then answers.
    events = [e async for e in mesh.bot.Generate(req)]
    assert events[0].accepted.job_id == orphan.id
    assert not events[0].accepted.replayed
    assert events[-1].finished.content == SLOW_ANSWER
    job = await job_of(mesh, req.idempotency_key)
    assert (job.status, job.attempts) == (common.JOB_STATUS_STREAMED, 2)


async def test_a_resend_of_a_job_alive_elsewhere_says_it_is_in_progress(
    mesh: Harness, gateway: ServiceProcess
) -> None:
    mesh.provider.reply, mesh.provider.chunk_delay = SLOW_ANSWER, 0.2
    req = request("tell me a long story")
    call = await start_streaming(stub(mesh, gateway), req)

    with pytest.raises(grpc.aio.AioRpcError) as caught:  # after duplicate_wait (4 s), not 16 s
        async for _ in mesh.bot.Generate(req):
            pass
    err = from_rpc_error(caught.value)
    assert (caught.value.code(), err.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_IN_PROGRESS",
    )
    assert "still being answered" in err.message
    events = [e async for e in call]  # the original was never disturbed
    assert events[-1].finished.content == SLOW_ANSWER
    job = await job_of(mesh, req.idempotency_key)
    assert (job.status, job.attempts) == (common.JOB_STATUS_STREAMED, 1)
