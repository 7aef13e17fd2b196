"""The gRPC core experiments the services run with (`grpc_options.SERVICE_GRPC_EXPERIMENTS`):
every image sets them, this grpcio knows them, and they move socket I/O off EventEngine's
threads (real gRPC calls over loopback in a fresh interpreter; the figures are `bench.rpc`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tzurot.runtime.grpc_options import (
    GRPC_EXPERIMENTS_ENV,
    SERVICE_GRPC_EXPERIMENTS,
    with_service_grpc_experiments,
)

REPO = Path(__file__).resolve().parents[3]
IMAGES = ("bot", "gateway", "inference", "keyvault", "memory")

CALLS = 1000
# CALLS unary calls on loopback, then how many write syscalls each thread name made (the
# kernel's count, /proc/<tid>/io `syscw`: gRPC's socket I/O is sendmsg/recvmsg, not counted
# there; a write is one thread waking another through an eventfd).
_CALLS = """
import asyncio, json, os, sys
import grpc

async def echo(request, context):
    return request

async def main():
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "t.T", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/t.T/Echo")
        for _ in range(int(sys.argv[1])):
            assert await call(b"x" * 200) == b"x" * 200
    writes = {}
    for task in os.listdir("/proc/self/task"):
        name = open(f"/proc/self/task/{task}/comm").read().strip()
        io = open(f"/proc/self/task/{task}/io").read().splitlines()
        syscw = dict(line.split(": ") for line in io)["syscw"]
        writes[name] = writes.get(name, 0) + int(syscw)
    await server.stop(None)
    print(json.dumps(writes))

asyncio.run(main())
"""


def _run_calls(experiments: str) -> tuple[dict[str, int], str]:
    env = {**os.environ, GRPC_EXPERIMENTS_ENV: experiments}
    done = subprocess.run(
        [sys.executable, "-c", _CALLS, str(CALLS)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout), done.stderr


def test_every_image_sets_the_services_grpc_experiments() -> None:
    for image in IMAGES:
        dockerfile = (REPO / "services" / image / "Dockerfile").read_text()
        found = re.findall(rf"^ENV {GRPC_EXPERIMENTS_ENV}=(\S+)$", dockerfile, re.MULTILINE)
        assert found == [SERVICE_GRPC_EXPERIMENTS], image


def test_an_operators_own_setting_is_kept() -> None:
    environ = {GRPC_EXPERIMENTS_ENV: "-event_engine_client"}
    with_service_grpc_experiments(environ)
    assert environ == {GRPC_EXPERIMENTS_ENV: "-event_engine_client"}
    unset: dict[str, str] = {}
    with_service_grpc_experiments(unset)
    assert unset == {GRPC_EXPERIMENTS_ENV: SERVICE_GRPC_EXPERIMENTS}


def test_socket_io_leaves_event_engines_threads_with_the_services_experiments() -> None:
    # gRPC logs "Unknown experiment: <name>" and goes on without it when a grpcio upgrade
    # drops one: then the services would silently run on EventEngine again.
    ours, stderr = _run_calls(SERVICE_GRPC_EXPERIMENTS)
    assert "Unknown experiment" not in stderr, stderr
    default, _ = _run_calls("")
    # By default EventEngine's threads carry every read and write, and hand each completion
    # to grpc.aio's poller thread, waking it with an eventfd write: ~2 writes a call (the
    # server's read, the client's). With ours the poller thread does the I/O itself and they
    # only keep timers: no write a call (0 to 2 in all). Counted, not timed (they used to
    # be CPU ticks, which a crowded machine moved): only one of the two experiments taking
    # effect leaves ~1 a call, still far above the bound.
    assert default.get("event_engine", 0) >= CALLS // 2, default
    assert ours.get("event_engine", 0) <= 10, ours
