"""Figure 3: what the Envoy edge costs a unary admin call (GetPersonality).

The same call straight to gateway over mTLS, through the real Envoy edge as gRPC, and through
the edge as JSON (gRPC-JSON transcoding), each measured at the client on loopback.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from bench.results import Figure, summarise
from tzurot.cli.localdb import create_database, local_postgres
from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls
from tzurot.testing.e2e import echo_mesh
from tzurot.testing.edge import running_envoy
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

_WARM_UP = 20


def run(quick: bool) -> list[Figure]:
    return asyncio.run(_run(100 if quick else 1000))


async def _run(calls: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="tzbench-", dir="/tmp") as tmp:
        root = Path(tmp)
        with local_postgres(root / "pg", delete_on_exit=True) as server_url:
            database_url = create_database(server_url, f"bench_{uuid.uuid4().hex[:8]}")
            async with (
                echo_mesh(database_url, root) as h,
                running_envoy(h.mesh.pki / "edge", h.mesh.ports.gateway, root) as ports,
            ):
                pki = h.mesh.pki
                request = gw.GetPersonalityRequest(personality="Echo")
                direct = await _grpc(h.cli, request, calls)
                channel = secure_channel(
                    f"127.0.0.1:{ports.edge}",
                    load_tls(pki / "cli"),
                    server_identity="edge",
                    default_timeout=10.0,
                )
                async with channel:
                    via_edge = await _grpc(gw_grpc.GatewayServiceStub(channel), request, calls)
                context = ssl.create_default_context(cafile=str(pki / "ca" / "ca.crt"))
                context.load_cert_chain(pki / "cli" / "tls.crt", pki / "cli" / "tls.key")
                url = f"https://127.0.0.1:{ports.edge}/v1/personalities/Echo"
                async with aiohttp.ClientSession() as session:
                    json_calls = await _json(session, url, context, calls)
    return [
        summarise("GetPersonality direct (gRPC)", direct),
        summarise("GetPersonality via edge (gRPC)", via_edge),
        summarise("GetPersonality via edge (JSON)", json_calls),
    ]


async def _grpc(
    stub: gw_grpc.GatewayServiceAsyncStub, request: gw.GetPersonalityRequest, calls: int
) -> list[float]:
    for _ in range(_WARM_UP):
        await stub.GetPersonality(request)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await stub.GetPersonality(request)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _json(
    session: aiohttp.ClientSession, url: str, context: ssl.SSLContext, calls: int
) -> list[float]:
    samples = []
    for n in range(_WARM_UP + calls):
        started = time.perf_counter()
        async with session.get(url, ssl=context) as reply:
            await reply.read()
            assert reply.status == 200
        if n >= _WARM_UP:
            samples.append((time.perf_counter() - started) * 1000)
    return samples
