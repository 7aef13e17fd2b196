"""The real Envoy edge (deploy/k8s/base/edge/envoy.yaml) in front of a real gateway.

Envoy terminates mTLS from clients holding a `cli` certificate and calls gateway over mTLS as
`edge`. Through it a native gRPC call, a gRPC-web call (HTTP/1.1) and the JSON transcoding of
the admin calls all reach the gateway; clients without the right certificate are refused.
"""

from __future__ import annotations

import base64
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest

from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls
from tzurot.testing.e2e import Harness, echo_mesh
from tzurot.testing.edge import EdgePorts, running_envoy
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

pytestmark = pytest.mark.e2e

SAGE_SEED = b"""
name: Sage
aliases: [the oracle]
system_prompt: You are Sage.
llm: {provider: openrouter, model: fake/echo}
"""


@dataclass
class Edge:
    harness: Harness
    ports: EdgePorts
    pki: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.ports.edge}"

    def ssl_context(self, identity: str | None = "cli") -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki / "ca" / "ca.crt"))
        if identity is not None:
            folder = self.pki / identity
            context.load_cert_chain(folder / "tls.crt", folder / "tls.key")
        return context


@pytest.fixture
async def edge(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Edge]:
    async with (
        echo_mesh(fresh_database(), tmp_path) as harness,
        running_envoy(harness.mesh.pki / "edge", harness.mesh.ports.gateway, tmp_path) as ports,
    ):
        yield Edge(harness, ports, harness.mesh.pki)


def grpc_web_frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def parse_grpc_web(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """Splits a gRPC-web response body into its messages and its trailers."""
    messages: list[bytes] = []
    trailers: dict[str, str] = {}
    offset = 0
    while offset < len(body):
        flags, length = body[offset], struct.unpack(">I", body[offset + 1 : offset + 5])[0]
        payload = body[offset + 5 : offset + 5 + length]
        offset += 5 + length
        if flags & 0x80:
            for line in payload.decode().split("\r\n"):
                if line:
                    name, _, value = line.partition(":")
                    trailers[name.strip().lower()] = value.strip()
        else:
            messages.append(payload)
    return messages, trailers


async def test_grpc_call_through_the_edge(edge: Edge) -> None:
    channel = secure_channel(
        f"127.0.0.1:{edge.ports.edge}",
        load_tls(edge.pki / "cli"),
        server_identity="edge",
        default_timeout=10.0,
    )
    async with channel:
        stub = gw_grpc.GatewayServiceStub(channel)
        reply = await stub.ListPersonalities(gw.ListPersonalitiesRequest())
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetPersonality(gw.GetPersonalityRequest(personality="nobody"))
    assert [p.display_name for p in reply.personalities] == ["Echo"]
    # Gateway's rich status passes through Envoy unchanged.
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert "nobody" in (missing.value.details() or "")


async def test_grpc_web_call_through_the_edge(edge: Edge) -> None:
    request = gw.GetPersonalityRequest(personality="the mirror")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{edge.url}/tzurot.v1.GatewayService/GetPersonality",
            data=grpc_web_frame(request.SerializeToString()),
            headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
            ssl=edge.ssl_context(),
        ) as reply,
    ):
        body = await reply.read()
        assert reply.version == aiohttp.HttpVersion11
        assert reply.status == 200
        assert reply.headers["content-type"].startswith("application/grpc-web")
    messages, trailers = parse_grpc_web(body)
    assert trailers["grpc-status"] == "0"
    (message,) = messages
    assert gw.GetPersonalityResponse.FromString(message).personality.display_name == "Echo"


async def test_json_admin_calls_through_the_edge(edge: Edge) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{edge.url}/v1/personalities:import",
            json={
                "format": "IMPORT_FORMAT_SEED_YAML",
                "document": base64.b64encode(SAGE_SEED).decode(),
            },
            ssl=edge.ssl_context(),
        ) as imported:
            assert imported.status == 200, await imported.text()
            created = await imported.json()
        async with session.get(
            f"{edge.url}/v1/personalities/the%20oracle", ssl=edge.ssl_context()
        ) as fetched:
            assert fetched.status == 200
            assert fetched.headers["content-type"].startswith("application/json")
            sage = await fetched.json()
        async with session.get(f"{edge.url}/v1/personalities", ssl=edge.ssl_context()) as listed:
            names = sorted(p["display_name"] for p in (await listed.json())["personalities"])
        async with session.get(
            f"{edge.url}/v1/personalities/nobody", ssl=edge.ssl_context()
        ) as missing:
            missing_status = missing.status
            missing_body = await missing.json()
    assert created["created"] is True
    assert sage["personality"]["display_name"] == "Sage"
    assert "the oracle" in sage["personality"]["aliases"]
    assert names == ["Echo", "Sage"]
    # gRPC NOT_FOUND becomes HTTP 404 with the status as JSON (convert_grpc_status).
    assert missing_status == 404
    assert missing_body["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert "nobody" in missing_body["message"]
    # The rich status survives: google.rpc.ErrorInfo rendered through the descriptor set.
    (info,) = [d for d in missing_body["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert info["domain"] == "tzurot"
    assert info["reason"]


@pytest.mark.parametrize("identity", [None, "bot"])
async def test_edge_refuses_clients_without_a_cli_certificate(
    edge: Edge, identity: str | None
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(
                f"{edge.url}/v1/personalities", ssl=edge.ssl_context(identity)
            ) as reply:
                await reply.read()
    # The same session with a cli certificate gets through: the edge itself is up.
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{edge.url}/v1/personalities", ssl=edge.ssl_context()) as reply,
    ):
        assert reply.status == 200
