"""`tzurot admin` prints what the mesh sends without terminal controls: a personality's name
(any user chooses one), aliases, a denylist reason, a job's error and the mesh's error messages
reach the operator's terminal with no escape sequence (OSC 52 clipboard write, OSC 8 link,
screen clear), no carriage return and no direction override, one line each."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import timestamp_pb2

from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import NotFound
from tzurot.runtime.server import RunningServer, ServiceRegistration, create_server
from tzurot.runtime.tls import generate_dev_pki
from tzurot.testing.processes import free_port
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"
LINK = "\x1b]8;;https://evil.example\x1b\\here\x1b]8;;\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
OVERRIDE = "\u202e"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Any control character but newline, and any bidirectional control."""


class HostileGateway(gw_grpc.GatewayServiceServicer):
    """A gateway whose stored names, reasons and errors carry every trick."""

    async def ListPersonalities(
        self, request: gw.ListPersonalitiesRequest, context: Any
    ) -> gw.ListPersonalitiesResponse:
        return gw.ListPersonalitiesResponse(
            personalities=[
                common.Personality(
                    slug="lilith",
                    display_name=f"Lil{CLIPBOARD}ith{OVERRIDE}",
                    aliases=[f"Lily{CLEAR}", f"li\r{LINK}\nx"],
                )
            ]
        )

    async def ListDenylist(
        self, request: gw.ListDenylistRequest, context: Any
    ) -> gw.ListDenylistResponse:
        return gw.ListDenylistResponse(
            entries=[
                gw.DenylistEntry(
                    id="e1",
                    target=gw.DENY_TARGET_USER,
                    target_id="42",
                    scope=gw.DENY_SCOPE_BOT,
                    mode=gw.DENY_MODE_BLOCK,
                    reason=f"spam{CLIPBOARD}\ntzurot: all good",
                )
            ]
        )

    async def GetJobStatus(
        self, request: gw.GetJobStatusRequest, context: Any
    ) -> gw.GetJobStatusResponse:
        return gw.GetJobStatusResponse(
            job=gw.Job(
                id=request.job_id,
                status=common.JOB_STATUS_FAILED,
                attempts=1,
                created_at=timestamp_pb2.Timestamp(seconds=0),
                error=gw.JobError(
                    code="INTERNAL", reason=f"BAD{CLEAR}", message=f"the model said {LINK}\r!"
                ),
            )
        )

    async def DeletePersonality(
        self, request: gw.DeletePersonalityRequest, context: Any
    ) -> gw.DeletePersonalityResponse:
        raise NotFound(f"no personality named {request.personality}{CLIPBOARD}\nok{OVERRIDE}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    pki = tmp_path_factory.mktemp("pki")
    generate_dev_pki(pki, ["gateway", "cli"])
    addr = f"127.0.0.1:{free_port()}"
    loop = asyncio.new_event_loop()
    running: list[RunningServer] = []

    async def start() -> None:
        server = await create_server(
            service="gateway",
            settings=ServiceSettings(tls_dir=pki / "gateway", listen=addr),
            registrations=[
                ServiceRegistration(
                    "tzurot.v1.GatewayService",
                    lambda s: gw_grpc.add_GatewayServiceServicer_to_server(
                        HostileGateway(),  # type: ignore[abstract]  # a few RPCs of many
                        s,
                    ),
                )
            ],
            default_allowed=frozenset({"cli"}),
        )
        await server.start()
        running.append(server)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield {
            **{k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")},
            "TZUROT_GATEWAY_ADDR": addr,
            "TZUROT_CLI_TLS_DIR": str(pki / "cli"),
        }
    finally:
        asyncio.run_coroutine_threadsafe(running[0].stop(None), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_personality_listing_prints_no_control(env: dict[str, str]) -> None:
    result = admin(env, "personalities", "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{'lilith':<20} {'Lilith':<24} aliases: Lily, lihere x\n"
    assert not CONTROL.search(result.stdout + result.stderr)


def test_a_denylist_reason_and_a_job_error_print_no_control(env: dict[str, str]) -> None:
    listed = admin(env, "denylist", "list")
    job = admin(env, "jobs", "status", "job-1")
    assert listed.returncode == 0, listed.stderr
    assert job.returncode == 0, job.stderr
    assert listed.stdout == "e1  user:42  bot  block  spam tzurot: all good\n"
    assert job.stdout.splitlines()[-1] == "error [INTERNAL] BAD: the model said here!"
    assert not CONTROL.search(listed.stdout + listed.stderr + job.stdout + job.stderr)


def test_the_mesh_s_error_message_is_one_clean_line(env: dict[str, str]) -> None:
    result = admin(env, "personalities", "delete", "Sage")
    assert result.returncode == 1
    assert result.stderr == "tzurot: [not_found] no personality named Sage ok\n"
    assert result.stdout == ""


def test_admin_runs_from_the_cli_with_the_same_text(env: dict[str, str], tmp_path: Path) -> None:
    """`tzurot admin` is the same command (the CLI registers tzurot.admin's app)."""
    result = subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.cli", "admin", "personalities", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Lilith " in result.stdout
    assert not CONTROL.search(result.stdout + result.stderr)
