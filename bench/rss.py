"""Figure 7: peak and current memory (RSS) of each service of `tzurot up --demo`, idle and
after a load phase driven through the gateway with the CLI certificate.

Reads VmRSS (now) and VmHWM (peak since start) from /proc/<pid>/status of each child
process `tzurot up` spawned (`python -m tzurot.<service>`).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.cold_start import free_base_port, running_up
from bench.load import GrpcChat, ProviderClock, conversations, user_of
from bench.results import Figure
from tzurot.runtime.client import secure_channel
from tzurot.runtime.forkserver import runs_service
from tzurot.runtime.tls import load_tls
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

SERVICES = ("gateway", "inference", "memory", "keyvault")
PREFIX = "rss"
COLUMNS = "p50 = RSS after load, p99 = peak RSS (VmHWM), mean = idle RSS"


def run(quick: bool) -> list[Figure]:
    conversations_at_once, turns_each = (20, 3) if quick else (50, 20)
    with tempfile.TemporaryDirectory(prefix="tzrss-", dir="/tmp") as tmp:
        data, port = Path(tmp) / "data", free_base_port()
        # the load phase sends many turns; the default per-user limit would refuse them
        no_limits = {"TZUROT_RATE_USER_CAPACITY": "0", "TZUROT_RATE_CHANNEL_CAPACITY": "0"}
        with running_up(data, port, no_limits) as up:
            pids = _service_pids(up.pid)
            time.sleep(1.0)
            idle = {name: _memory(pid) for name, pid in pids.items()}
            started = time.perf_counter()
            turns = asyncio.run(
                _load(
                    data / "certs" / "cli", f"127.0.0.1:{port}", conversations_at_once, turns_each
                )
            )
            seconds = time.perf_counter() - started
            loaded = {name: _memory(pid) for name, pid in pids.items()}
    load = f"{turns} turns, {conversations_at_once} at once, {turns / seconds:.0f}/s"
    return [
        Figure(
            name=f"fig7 RSS {name}",
            unit="MiB",
            samples=1,
            p50=loaded[name][0],
            p99=loaded[name][1],
            mean=idle[name][0],
            extra={
                "idle_rss_mib": idle[name][0],
                "idle_peak_mib": idle[name][1],
                **({"load": load, "columns": COLUMNS} if n == 0 else {}),
            },
        )
        for n, name in enumerate(pids)
    ]


async def _load(cli_certs: Path, gateway: str, count: int, turns_each: int) -> int:
    async with secure_channel(
        gateway, load_tls(cli_certs), server_identity="gateway", default_timeout=30.0
    ) as channel:
        stub = gw_grpc.GatewayServiceStub(channel)
        for n in range(count):
            await stub.SetWalletKey(
                gw.SetWalletKeyRequest(
                    actor=common.Actor(user_id=f"discord:{user_of(PREFIX, n)}"),
                    provider="openrouter",
                    api_key="sk-or-bench-0123456789abcdef",
                )
            )
        timings = await conversations(
            GrpcChat(stub),
            ProviderClock(),
            count=count,
            turns_each=turns_each,
            prefix=PREFIX,
            personality="Lilith",
        )
    return len(timings)


def _service_pids(parent: int) -> dict[str, int]:
    """The services among the children of `parent`, by their `-m tzurot.<service>`."""
    found: dict[str, int] = {}
    for task in Path(f"/proc/{parent}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # the thread ended since the listing
            continue
        for child in children:
            for name in SERVICES:
                if runs_service(int(child), name):
                    found[name] = int(child)
    found["up (+demo provider)"] = parent
    return found


def _memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields["VmRSS"], fields["VmHWM"]
