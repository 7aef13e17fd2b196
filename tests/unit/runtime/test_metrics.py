"""Prometheus metrics: what real RPCs record, and the /metrics endpoint scraped over HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tzurot.runtime import metrics
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import StartupError
from tzurot.runtime.probes import start_probe_server
from tzurot.runtime.server import RunningServer

StartServer = Callable[..., Awaitable[RunningServer]]
ChannelFactory = Callable[..., grpc.aio.Channel]
if TYPE_CHECKING:  # generic only in the stubs
    UnaryUnary = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]


def probe(channel: grpc.aio.Channel, name: str) -> UnaryUnary:
    return channel.unary_unary(f"/test.v1.Probe/{name}")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def handled(method: str, code: str) -> float:
    return sample(
        "grpc_server_handled_total",
        grpc_service="test.v1.Probe",
        grpc_method=method,
        grpc_code=code,
    )


async def counted(read: Callable[[], float], expected: float) -> float:
    """`read()` once it equals `expected`, or what it is after 5 s. The server records a call
    after it sent the status (the access line's `finally`), so the client can see the status
    a moment before the counter moves."""
    for _ in range(500):
        if read() == expected:
            break
        await asyncio.sleep(0.01)
    return read()


async def scrape(port: int) -> dict[str, float]:
    """GET /metrics as Prometheus would; returns every sample as 'name{labels}' -> value."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as reply,
    ):
        assert reply.status == 200
        text = await reply.text()
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            values[f"{s.name}{{{labels}}}"] = s.value
    return values


async def test_rpcs_are_counted_by_method_and_code(
    start_server: StartServer, channel_to: ChannelFactory
) -> None:
    before_ok, before_nf = handled("Whoami", "OK"), handled("Fail", "NOT_FOUND")
    before_refused = sample(
        "tzurot_rate_limit_refusals_total", grpc_service="test.v1.Probe", grpc_method="Fail"
    )
    latency_before = sample(
        "grpc_server_handling_seconds_count", grpc_service="test.v1.Probe", grpc_method="Whoami"
    )
    running = await start_server()
    channel = channel_to(running)
    for _ in range(3):
        await probe(channel, "Whoami")(b"")
    for kind in ("not_found", "exhausted", "exhausted"):
        with pytest.raises(grpc.aio.AioRpcError):
            await probe(channel, "Fail")(kind.encode())
    assert await counted(lambda: handled("Whoami", "OK") - before_ok, 3) == 3
    assert await counted(lambda: handled("Fail", "NOT_FOUND") - before_nf, 1) == 1
    refused = await counted(
        lambda: (
            sample(
                "tzurot_rate_limit_refusals_total", grpc_service="test.v1.Probe", grpc_method="Fail"
            )
            - before_refused
        ),
        2,
    )
    assert refused == 2
    latency = await counted(
        lambda: (
            sample(
                "grpc_server_handling_seconds_count",
                grpc_service="test.v1.Probe",
                grpc_method="Whoami",
            )
            - latency_before
        ),
        3,
    )
    assert latency == 3


async def test_refused_callers_are_counted_too(
    start_server: StartServer, channel_to: ChannelFactory
) -> None:
    before = handled("Whoami", "PERMISSION_DENIED")
    running = await start_server(default_allowed=frozenset({"cli"}))
    with pytest.raises(grpc.aio.AioRpcError):
        await probe(channel_to(running, identity="bot"), "Whoami")(b"")
    assert await counted(lambda: handled("Whoami", "PERMISSION_DENIED") - before, 1) == 1


async def test_metrics_endpoint_serves_what_the_service_recorded(
    start_server: StartServer, channel_to: ChannelFactory
) -> None:
    running = await start_server(metrics_listen="127.0.0.1:0")
    assert running.metrics_server is not None
    await probe(channel_to(running), "Whoami")(b"")
    metrics.record_job("failed", "NO_API_KEY")
    metrics.record_tokens("openrouter", "fake/echo", input_tokens=12, output_tokens=5)
    values = await scrape(running.metrics_server.port)
    ok = "grpc_server_handled_total{grpc_code=OK,grpc_method=Whoami,grpc_service=test.v1.Probe}"
    assert values[ok] >= 1
    assert values["tzurot_jobs_total{outcome=failed,reason=NO_API_KEY}"] >= 1
    tokens = "tzurot_llm_tokens_total{direction=output,model=fake/echo,provider=openrouter}"
    assert values[tokens] >= 5
    port = running.metrics_server.port
    await running.stop(None)
    with pytest.raises(aiohttp.ClientError):
        await scrape(port)


def test_metrics_listen_must_be_host_and_port() -> None:
    with pytest.raises(StartupError, match="not host:port"):
        metrics.start_metrics_server("9090")


def test_a_taken_metrics_port_is_a_startup_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{port} for metrics"):
            metrics.start_metrics_server(f"127.0.0.1:{port}")


async def test_probe_server_for_a_process_without_grpc_api(pki: Path) -> None:
    settings = ServiceSettings(
        tls_dir=pki / "bot", health_listen="127.0.0.1:0", metrics_listen="127.0.0.1:0"
    )
    probes = await start_probe_server("bot", settings)
    try:
        assert probes.health_port is not None
        assert probes.metrics_server is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{probes.health_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="")
            first = await health.Check(request)
            await probes.set_serving(True)
            second = await health.Check(request)
        assert first.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert second.status == health_pb2.HealthCheckResponse.SERVING
        assert any(
            name.startswith("python_info") for name in await scrape(probes.metrics_server.port)
        )
    finally:
        await probes.stop()


def test_job_and_token_counts_add_up_through_the_kept_children() -> None:
    labels = {"provider": "openrouter", "model": "fake/kept", "direction": "input"}
    before = sample("tzurot_llm_tokens_total", **labels)
    jobs_before = sample("tzurot_jobs_total", outcome="delivered", reason="")
    for _ in range(3):
        metrics.record_tokens("openrouter", "fake/kept", input_tokens=4, output_tokens=1)
        metrics.record_job("delivered")
    assert sample("tzurot_llm_tokens_total", **labels) - before == 12
    assert sample("tzurot_jobs_total", outcome="delivered", reason="") - jobs_before == 3
    for index in range(1100):  # more models than are kept: the oldest are looked up again
        metrics.record_tokens("openrouter", f"fake/m{index}", input_tokens=1, output_tokens=0)
    metrics.record_tokens("openrouter", "fake/kept", input_tokens=4, output_tokens=1)
    assert sample("tzurot_llm_tokens_total", **labels) - before == 16
    assert metrics._token_counters.cache_info().currsize <= 1024
