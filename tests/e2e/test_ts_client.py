"""The TypeScript client (clients/ts, generated from proto/ by buf) against the running mesh.

A small Node program (clients/ts/src/smoke.ts, built by `make ts`) talks to the mesh twice:
over gRPC with mTLS straight to the gateway as `cli`, and through the real Envoy edge over
gRPC-web. Each time it lists the personalities, streams a Generate and confirms the delivery;
then it calls keyvault, which refuses `cli` with PERMISSION_DENIED.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tzurot.testing.e2e import Harness, echo_mesh, set_key
from tzurot.testing.edge import REPO_ROOT, EdgePorts, running_envoy
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

SMOKE = REPO_ROOT / "clients" / "ts" / "dist" / "smoke.js"


@pytest.fixture
async def mesh_and_edge(
    fresh_database: DatabaseFactory, tmp_path: Path
) -> AsyncIterator[tuple[Harness, EdgePorts]]:
    async with (
        echo_mesh(fresh_database(), tmp_path) as harness,
        running_envoy(harness.mesh.pki / "edge", harness.mesh.ports.gateway, tmp_path) as ports,
    ):
        yield harness, ports


async def run_smoke(config: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is not on the PATH"
    assert SMOKE.exists(), f"{SMOKE} is missing: run `make ts`"
    process = await asyncio.create_subprocess_exec(
        node,
        str(SMOKE),
        env={**os.environ, "TZUROT_SMOKE": json.dumps(config)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    report: dict[str, Any] = json.loads(out)
    return report


async def test_typescript_client_over_mtls_and_grpc_web(
    mesh_and_edge: tuple[Harness, EdgePorts],
) -> None:
    harness, ports = mesh_and_edge
    await set_key(harness)  # alice's key, so the Generate calls are paid for
    mesh = harness.mesh
    report = await run_smoke(
        {
            "pki": str(mesh.pki),
            "gateway": mesh.gateway_addr,
            "edge": f"127.0.0.1:{ports.edge}",
            "keyvault": f"127.0.0.1:{mesh.ports.keyvault}",
            "actor": {"user_id": "discord:alice", "display_name": "Alice"},
            "personality": "the mirror",
            "content": "hello from TypeScript",
        }
    )

    for transport, suffix in (("grpc", "(grpc)"), ("grpcWeb", "(grpc-web)")):
        talk = report[transport]
        assert talk["personalities"] == ["Echo"]
        # Streaming order: accepted first, then the chunks, then one finished.
        assert talk["events"][0] == "accepted"
        assert talk["events"][-1] == "finished"
        assert set(talk["events"][1:-1]) == {"chunk"}
        assert talk["finished"].startswith("You said: ")
        assert talk["finished"].endswith(f"hello from TypeScript {suffix}")
        assert talk["chunks"] == talk["finished"]
        assert talk["replayed"] is False
        assert talk["status"] == "DELIVERED"
        assert talk["deliveredAt"] is True
        stored = await harness.cli.GetJobStatus(gw.GetJobStatusRequest(job_id=talk["jobId"]))
        assert stored.job.status == common.JOB_STATUS_DELIVERED
    # What the provider received: the second call (over gRPC-web) has the first exchange,
    # delivered over gRPC, in its history.
    second, *_ = [
        r
        for r in harness.provider.chat_requests()
        if json.dumps(r.body["messages"][-1]).count("hello from TypeScript (grpc-web)")
    ]
    history = json.dumps(second.body["messages"][:-1])
    assert "hello from TypeScript (grpc)" in history
    assert json.dumps(report["grpc"]["finished"])[1:-1] in history
    # keyvault refuses the cli identity, with a message naming who and what.
    refusal = report["keyvault"]
    assert refusal["code"] == "PermissionDenied"
    assert "'cli'" in refusal["message"]
    assert "KeyVaultService/Decrypt" in refusal["message"]
