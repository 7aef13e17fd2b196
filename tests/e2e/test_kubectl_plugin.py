"""`kubectl tzurot` against the real mesh, with a fake `kubectl` on the PATH.

The fake kubectl records every call and acts like the real one where the plugin relies on it:
`get pods` names a pod, `port-forward` prints its "Forwarding from" line (to the in-process
service's real port) and stays up, `exec ... -- tzurot admin` runs the admin command with the
gateway pod's environment (its own `gateway` certificate), `get networkpolicies|jobs` answer
JSON. The operator commands themselves run for real through the mesh.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from tzurot.testing.e2e import Harness, actor, converse, echo_mesh, request, set_key
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

PLUGIN = Path(sys.executable).parent / "kubectl-tzurot"
PODS = {
    s: f"{s}-5c9d7b-x2x{i}" for i, s in enumerate(("gateway", "inference", "memory", "keyvault"))
}
FAKE_KUBECTL = f"""#!{sys.executable}
import json, os, subprocess, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
config = json.load(open(os.environ["FAKE_KUBECTL_CONFIG"]))
rest = list(args)
while rest and rest[0] in ("--context", "--namespace"):
    rest = rest[2:]
if rest[:2] == ["get", "pods"]:
    service = rest[rest.index("--selector") + 1].split("=", 1)[1]
    print(config["pods"].get(service, ""), end="")
elif rest[:2] == ["get", "networkpolicies"]:
    print(json.dumps({{"items": config["networkpolicies"]}}))
elif rest[:2] == ["get", "jobs"]:
    print(json.dumps({{"items": config["jobs"]}}))
elif rest[0] == "port-forward":
    remote = rest[2].lstrip(":")
    local = config["ports"][remote]
    print(f"Forwarding from 127.0.0.1:{{local}} -> {{remote}}", flush=True)
    print(f"Forwarding from [::1]:{{local}} -> {{remote}}", flush=True)
    time.sleep(3600)
elif rest[0] == "exec":
    command = rest[rest.index("--") + 1:]
    assert command[:2] == ["tzurot", "admin"], command
    env = {{**os.environ, **config["pod_env"]}}
    sys.exit(subprocess.call([sys.executable, "-m", "tzurot.admin", *command[2:]], env=env))
else:
    sys.exit(f"fake kubectl: unexpected call {{args}}")
"""

SAGE = b"""name: Sage
aliases: [the oracle]
system_prompt: You are Sage.
llm: {provider: openrouter, model: fake/echo}
"""


def policy(name: str, selector: dict[str, Any], types: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"podSelector": selector, "policyTypes": types}}


GOOD_POLICIES = [
    policy("default-deny", {}, ["Ingress", "Egress"]),
    *(
        policy(s, {"matchLabels": {"app.kubernetes.io/name": s}}, ["Ingress", "Egress"])
        for s in ("gateway", "inference", "memory", "keyvault", "bot", "edge")
    ),
]
MIGRATIONS = [
    {"metadata": {"name": f"migrate-{s}"}, "status": {"succeeded": 1}}
    for s in ("gateway", "memory", "keyvault")
]


@dataclass
class Cluster:
    harness: Harness
    workdir: Path
    log: Path
    config: dict[str, Any]

    def write_config(self) -> None:
        (self.workdir / "kubectl.json").write_text(json.dumps(self.config))

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    async def plugin(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        self.log.unlink(missing_ok=True)
        self.write_config()
        process = await asyncio.create_subprocess_exec(
            str(PLUGIN),
            *args,
            env={
                **os.environ,
                "PATH": f"{self.workdir / 'bin'}{os.pathsep}{os.environ['PATH']}",
                "FAKE_KUBECTL_LOG": str(self.log),
                "FAKE_KUBECTL_CONFIG": str(self.workdir / "kubectl.json"),
                **(env or {}),
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 180)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def cluster(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with echo_mesh(fresh_database(), tmp_path) as harness:
        mesh = harness.mesh
        (tmp_path / "bin").mkdir()
        kubectl = tmp_path / "bin" / "kubectl"
        kubectl.write_text(FAKE_KUBECTL)
        kubectl.chmod(0o755)
        ports = mesh.ports
        addresses = {
            "TZUROT_INFERENCE_ADDR": f"127.0.0.1:{ports.inference}",
            "TZUROT_MEMORY_ADDR": f"127.0.0.1:{ports.memory}",
            "TZUROT_KEYVAULT_ADDR": f"127.0.0.1:{ports.keyvault}",
        }
        config = {
            "pods": PODS,
            "ports": {
                "15051": ports.gateway,
                "15052": ports.inference,
                "15053": ports.memory,
                "15054": ports.keyvault,
            },
            # What the gateway pod's environment holds (deployment + gateway-config).
            "pod_env": {
                **addresses,
                "TZUROT_GATEWAY_ADDR": mesh.gateway_addr,
                "TZUROT_TLS_DIR": str(mesh.pki / "gateway"),
            },
            "networkpolicies": GOOD_POLICIES,
            "jobs": MIGRATIONS,
        }
        yield Cluster(harness, tmp_path, tmp_path / "kubectl.log", config)


async def test_operator_commands_through_port_forward_exec_and_locally(
    cluster: Cluster, tmp_path: Path
) -> None:
    cli_certs = str(cluster.harness.mesh.pki / "cli")
    forward = ("--namespace", "tzurot", "--tls-dir", cli_certs)

    # Port-forward: find a running gateway pod, forward to its gRPC port, run here as cli.
    code, out, err = await cluster.plugin(*forward, "personalities", "list")
    assert code == 0, err
    assert "Echo" in out
    calls = cluster.calls()
    assert calls[0][:4] == ["--namespace", "tzurot", "get", "pods"]
    assert "app.kubernetes.io/name=gateway" in calls[0]
    assert "status.phase=Running" in calls[0]
    assert calls[1] == ["--namespace", "tzurot", "port-forward", f"pod/{PODS['gateway']}", ":15051"]

    seed = tmp_path / "sage.yaml"
    seed.write_bytes(SAGE)
    code, out, err = await cluster.plugin(*forward, "personalities", "import", str(seed))
    assert (code, out.strip()) == (0, "Created Sage (sage)"), err

    # Exec: the same CLI inside the gateway pod, with the pod's own identity.
    code, out, err = await cluster.plugin("--exec", "personalities", "export", "the oracle")
    assert code == 0, err
    assert "name: Sage" in out
    assert "the oracle" in out
    assert cluster.calls() == [
        ["exec", "deploy/gateway", "-c", "gateway", "--", "tzurot", "admin",
         "personalities", "export", "the oracle"],
    ]  # fmt: skip

    code, out, err = await cluster.plugin("--exec", "personalities", "delete", "sage")
    assert code == 0, err
    code, out, _ = await cluster.plugin(*forward, "personalities", "list")
    assert "Sage" not in out

    # Denylist: add as the gateway pod (exec), see it and remove it through a port-forward.
    code, out, err = await cluster.plugin(
        "--exec", "denylist", "add", "123456789", "--reason", "spam"
    )
    assert code == 0, err
    entry_id = out.split()[-1]
    code, out, err = await cluster.plugin(*forward, "denylist", "list")
    assert entry_id in out
    assert "user:123456789" in out
    assert "spam" in out
    code, out, err = await cluster.plugin(*forward, "denylist", "remove", entry_id)
    assert code == 0, err
    code, out, _ = await cluster.plugin("--exec", "denylist", "list")
    assert "The denylist is empty." in out

    # Usage, jobs, memory after one real conversation.
    await set_key(cluster.harness)
    _, job_id = await converse(cluster.harness, request("hello"))
    code, out, err = await cluster.plugin(*forward, "jobs", "status", job_id)
    assert code == 0, err
    assert f"job {job_id}: delivered" in out
    code, out, err = await cluster.plugin("--exec", "usage", "--period", "day")
    assert code == 0, err
    assert "openrouter" in out
    assert "fake/echo" in out
    code, out, err = await cluster.plugin(
        "--exec", "memory", "stats", "the mirror", "--user", "discord:alice"
    )
    assert code == 0, err
    assert out.startswith("memories: ")

    # Health: one port-forward per service.
    code, out, err = await cluster.plugin(*forward, "health")
    assert code == 0, err
    for service in ("gateway", "inference", "memory", "keyvault"):
        assert f"{service:<10} SERVING" in out
        assert ["--namespace", "tzurot", "port-forward", f"pod/{PODS[service]}",
                f":{15051 + ('gateway', 'inference', 'memory', 'keyvault').index(service)}"
                ] in cluster.calls()  # fmt: skip

    # Key rotation from inside the gateway pod.
    code, out, err = await cluster.plugin("--exec", "keys", "rotate", "--batch-size", "1")
    assert code == 0, err
    assert "done: every key uses master key version" in out
    code, out, err = await cluster.plugin(*forward, "keys", "progress")
    assert code == 0, err
    assert re.fullmatch(r"version \d+: 1/1 keys on it \(complete\)\n", out), out

    # Locally against `make run`: no kubectl at all.
    local_env = {
        **cluster.config["pod_env"],
        "TZUROT_TLS_DIR": "",
        "TZUROT_CLI_TLS_DIR": cli_certs,
    }
    local_env.pop("TZUROT_TLS_DIR")
    code, out, err = await cluster.plugin("--local", "personalities", "list", env=local_env)
    assert code == 0, err
    assert "Echo" in out
    assert cluster.calls() == []


async def test_doctor_checks_certificates_policies_and_migrations(cluster: Cluster) -> None:
    forward = ("--tls-dir", str(cluster.harness.mesh.pki / "cli"))
    code, out, err = await cluster.plugin(*forward, "doctor")
    assert code == 0, out + err
    assert "ok   certificate gateway" in out
    assert "ok   networkpolicy default deny (ingress and egress)" in out
    assert "ok   migration migrate-memory: succeeded" in out
    assert ["get", "networkpolicies", "--output", "json"] in cluster.calls()

    # A missing policy, a failed migration and a certificate close to expiry each fail it.
    cluster.config["networkpolicies"] = [p for p in GOOD_POLICIES if p["metadata"]["name"] != "bot"]
    cluster.config["jobs"] = [
        *MIGRATIONS[:2],
        {"metadata": {"name": "migrate-keyvault"}, "status": {"failed": 3}},
    ]
    code, out, _ = await cluster.plugin(*forward, "doctor", "--warn-days", "100000")
    assert code == 1
    assert "FAIL networkpolicy for bot" in out
    assert "FAIL migration migrate-keyvault: not complete (failed 3)" in out
    assert "FAIL certificate gateway" in out
    assert "under 100000 days" in out


async def test_a_namespace_without_a_gateway_pod_is_a_clear_error(cluster: Cluster) -> None:
    cluster.config["pods"] = {}
    code, _, err = await cluster.plugin("--namespace", "elsewhere", "personalities", "list")
    assert code == 2
    assert "no running gateway pod" in err


async def test_jobs_retry_answers_a_failed_job_and_the_resend_replays_it(cluster: Cluster) -> None:
    """Issue #21: `jobs retry` through the plugin (port-forward and exec) and gateway's RetryJob.

    Carol writes before she has a key: her job fails. She adds a key; the operator retries the
    job; her client's resend of the same message gets the answer replayed, not generated again.
    """
    h = cluster.harness
    forward = ("--namespace", "tzurot", "--tls-dir", str(h.mesh.pki / "cli"))
    req = request("are you there?", who="carol")
    with pytest.raises(grpc.aio.AioRpcError):
        async for _ in h.bot.Generate(req):
            pass
    failed = (
        await h.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=req.idempotency_key))
    ).job
    assert failed.status == common.JOB_STATUS_FAILED

    # Not for a user: only operators retry jobs.
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await h.bot.RetryJob(gw.RetryJobRequest(job_id=failed.id, actor=actor("carol")))
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED

    # Still no key: the retry fails again and says why (exit 1).
    code, out, err = await cluster.plugin(*forward, "jobs", "retry", failed.id)
    assert code == 1, err
    assert f"job {failed.id}: failed (attempts 2)" in out
    assert "error [" in out

    await set_key(h, who="carol")
    paid = len(h.provider.chat_requests())
    code, out, err = await cluster.plugin("--exec", "jobs", "retry", failed.id)
    assert code == 0, err
    assert f"job {failed.id}: streamed (attempts 3)" in out
    assert len(h.provider.chat_requests()) == paid + 1

    events = [e async for e in h.bot.Generate(req)]  # the client sends the message again
    assert events[0].accepted.replayed
    assert events[-1].finished.content.endswith("are you there?")
    assert len(h.provider.chat_requests()) == paid + 1  # replayed, not generated again
    await h.bot.ConfirmDelivery(
        gw.ConfirmDeliveryRequest(job_id=failed.id, message_ids=["reply-carol"])
    )

    code, out, err = await cluster.plugin(*forward, "jobs", "retry", failed.id)
    assert code == 1
    assert "already answered (delivered)" in err
