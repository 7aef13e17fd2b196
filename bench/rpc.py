"""`python -m bench.rpc [--calls N]`: CPU per RPC on the mesh's transport, and what each part costs.

One process runs a bytes-in/bytes-out server and its client on loopback, so the CPU time of
the process (`time.process_time`, gRPC's own threads included) per call is client + server
together. The same calls run over:

- **ours**: `create_server` + `secure_channel`, as every service (mTLS, the server call
  interceptor with its access-log line, the client's defaults interceptor), logs configured
  as in production (JSON, INFO) and written to /dev/null;
- **ours, logs at WARNING**: the same, access-log lines filtered out (their cost is the
  difference);
- **no interceptors**: the same mTLS server and channel without our interceptors;
- **plaintext, no interceptors**: grpc.aio with nothing of ours.

Each is measured for a unary call and for a server stream of 8 messages (Generate's shape).
Variants are interleaved in rounds, so a noisy neighbour hits them all alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc

from bench.env import quiet_logs
from bench.results import Figure
from tzurot.runtime.client import secure_channel
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.grpc_options import CLIENT_OPTIONS, SERVER_OPTIONS
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.server import ServiceRegistration, create_server
from tzurot.runtime.tls import channel_credentials, generate_dev_pki, load_tls, server_credentials

SERVICE = "bench.v1.Rpc"
STREAMED = 8
_PAYLOAD = b"x" * 200


async def _unary(request: bytes, context: Any) -> bytes:
    return request


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for _ in range(STREAMED):
        yield request


def _handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream),
        },
    )


def _add_handler(server: grpc.aio.Server) -> None:
    server.add_generic_rpc_handlers([_handler()])


Call = Callable[[], Awaitable[None]]


def _calls(channel: grpc.aio.Channel) -> tuple[Call, Call]:
    unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{SERVICE}/Unary")
    stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
        f"/{SERVICE}/Stream"
    )

    async def one_unary() -> None:
        await unary(_PAYLOAD)

    async def one_stream() -> None:
        async for _ in stream(_PAYLOAD):
            pass

    return one_unary, one_stream


async def _ours(stack: AsyncExitStack, pki: Path) -> tuple[Call, Call]:
    running = await create_server(
        service="gateway",
        settings=ServiceSettings(tls_dir=pki / "gateway"),
        registrations=[ServiceRegistration(SERVICE, _add_handler)],
        default_allowed=frozenset({"bot"}),
    )
    await running.start()
    stack.push_async_callback(running.stop, None)
    channel = secure_channel(
        f"127.0.0.1:{running.port}",
        load_tls(pki / "bot"),
        server_identity="gateway",
        default_timeout=30.0,
    )
    stack.push_async_callback(channel.close)
    return _calls(channel)


async def _raw(stack: AsyncExitStack, pki: Path | None) -> tuple[Call, Call]:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers([_handler()])
    if pki is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", server_credentials(load_tls(pki / "gateway")))
    await server.start()
    stack.push_async_callback(server.stop, None)
    if pki is None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CLIENT_OPTIONS)
    else:
        channel = grpc.aio.secure_channel(
            f"127.0.0.1:{port}",
            channel_credentials(load_tls(pki / "bot")),
            options=[*CLIENT_OPTIONS, ("grpc.ssl_target_name_override", "gateway")],
        )
    stack.push_async_callback(channel.close)
    return _calls(channel)


async def _cpu_us(call: Call, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - started) * 1e6 / n


VARIANTS = ("ours", "ours, logs at WARNING", "no interceptors", "plaintext, no interceptors")


async def measure(calls: int, rounds: int = 7) -> dict[str, dict[str, float]]:
    """{variant: {"unary_us": …, "stream_us": …}}: median over rounds of CPU µs per call."""
    found: dict[str, dict[str, list[float]]] = {
        v: {"unary_us": [], "stream_us": []} for v in VARIANTS
    }
    with tempfile.TemporaryDirectory(prefix="tzrpc-") as tmp, quiet_logs():
        pki = Path(tmp)
        generate_dev_pki(pki, ["gateway", "bot"])
        async with AsyncExitStack() as stack:
            ours = await _ours(stack, pki)
            variants = {
                "ours": ours,
                "ours, logs at WARNING": ours,
                "no interceptors": await _raw(stack, pki),
                "plaintext, no interceptors": await _raw(stack, None),
            }
            for unary, stream in variants.values():  # warm every path
                await _cpu_us(unary, 50)
                await _cpu_us(stream, 20)
            for _ in range(rounds):
                for name, (unary, stream) in variants.items():
                    level = "WARNING" if name == "ours, logs at WARNING" else "INFO"
                    configure_logging("bench", level=level, fmt="json")
                    found[name]["unary_us"].append(await _cpu_us(unary, calls))
                    found[name]["stream_us"].append(await _cpu_us(stream, calls // 2))
            configure_logging("bench", level="INFO", fmt="json")
    return {
        name: {key: round(statistics.median(values), 1) for key, values in figures.items()}
        for name, figures in found.items()
    }


def run(quick: bool) -> list[Figure]:
    found = measure_sync(200 if quick else 1000)
    figures = []
    for name, f in found.items():
        figures.append(
            Figure(
                name=f"rpc CPU per call, {name}",
                unit="us",
                samples=1,
                p50=f["unary_us"],
                p99=f["stream_us"],
                mean=f["unary_us"],
                extra={"columns": f"p50 = unary, p99 = stream of {STREAMED}"},
            )
        )
    return figures


def measure_sync(calls: int) -> dict[str, dict[str, float]]:
    return asyncio.run(measure(calls))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rpc")
    parser.add_argument("--calls", type=int, default=1000)
    found = measure_sync(parser.parse_args().calls)
    for name, f in found.items():
        print(
            f"{name:28} unary {f['unary_us']:7.1f} us/call   "
            f"stream of {STREAMED} {f['stream_us']:7.1f} us/call",
            file=sys.stdout,
            flush=True,
        )


if __name__ == "__main__":
    main()
