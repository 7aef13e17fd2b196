"""What the `tzurot keys` tests share: a local data dir as `tzurot up` makes it, a keyvault
stand-in served over real mTLS, and the `tzurot` command run in a process (also as a user
whom file modes bind), killed when it does not finish in time."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.unit.cli.unprivileged import bound_by_modes, skip_when_not_dropped
from tzurot.cli.mesh import ensure_master_key
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.server import RunningServer, ServiceRegistration, create_server
from tzurot.runtime.tls import generate_dev_pki
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc


def local_state(tmp_path: Path) -> Path:
    """`<tmp_path>/.data` with the keyvault's and cli's certificates and a master key."""
    data_dir = tmp_path / ".data"
    generate_dev_pki(data_dir / "certs", ["keyvault", "cli"])
    ensure_master_key(data_dir / "master.key")
    return data_dir


def key_file_in(folder: Path) -> Path:
    key_file = folder / "master.key"
    ensure_master_key(key_file)
    return key_file


def versions(key_file: Path) -> list[str]:
    return [line.split(":")[0] for line in key_file.read_text().split()]


class SlowKeyvault(kv_grpc.KeyVaultServiceServicer):
    """Follows the key file (version 1, then 2); each rewrap waits until `release` is set."""

    def __init__(self) -> None:
        self.asked = 0
        self.rewrapping = asyncio.Event()
        self.release = asyncio.Event()

    async def GetRewrapProgress(
        self, request: kv.GetRewrapProgressRequest, context: Any
    ) -> kv.GetRewrapProgressResponse:
        self.asked += 1
        return kv.GetRewrapProgressResponse(master_key_version=1, stale=3, total=3)

    async def RewrapKeys(
        self, request: kv.RewrapKeysRequest, context: Any
    ) -> AsyncIterator[kv.RewrapKeysResponse]:
        self.rewrapping.set()
        await self.release.wait()
        yield kv.RewrapKeysResponse(master_key_version=2, rewrapped=3, total=3)


def slow_keyvault(*, released: bool = False) -> SlowKeyvault:
    keyvault = SlowKeyvault()  # type: ignore[abstract]  # the two RPCs rotate calls
    if released:
        keyvault.release.set()
    return keyvault


async def serve(data_dir: Path, keyvault: kv_grpc.KeyVaultServiceServicer) -> RunningServer:
    """`keyvault` served on a free port with the certificates of `data_dir`, for `cli`."""
    server = await create_server(
        service="keyvault",
        settings=ServiceSettings(tls_dir=data_dir / "certs" / "keyvault", listen="127.0.0.1:0"),
        registrations=[
            ServiceRegistration(
                "tzurot.v1.KeyVaultService",
                lambda s: kv_grpc.add_KeyVaultServiceServicer_to_server(keyvault, s),
            )
        ],
        default_allowed=frozenset({"cli"}),
    )
    await server.start()
    return server


async def tzurot(*args: str, bound: bool = False) -> asyncio.subprocess.Process:
    """`tzurot args` in a process of its own session (this test's loop keeps serving
    meanwhile); `bound`: as a user whom file modes bind (tests/unit/cli/unprivileged.py)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    argv = [sys.executable, "-m", "tzurot.cli", *args]
    return await asyncio.create_subprocess_exec(
        *(bound_by_modes(argv) if bound else argv),
        env={**clean, "COLUMNS": "100"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )


async def finished(process: asyncio.subprocess.Process, within: float = 60) -> tuple[int, str, str]:
    """Its exit code, standard output and error; killed (and the test failed) when it has
    not finished `within` seconds: a command that hangs fails its test, not the run."""
    try:
        out, err = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: nothing else of ours
        await process.wait()
        raise AssertionError(f"the command did not finish within {within} s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def bound_tzurot(*args: str) -> tuple[int, str, str]:
    """`tzurot args` run as a user whom file modes bind; skips the test where root cannot
    drop its capabilities."""
    code, out, err = await finished(await tzurot(*args, bound=True))
    skip_when_not_dropped(code, err)
    return code, out, err


async def rotate(data_dir: Path, addr: str) -> tuple[int, str, str]:
    """`tzurot keys rotate` (adding a version, the default) of `data_dir` against `addr`."""
    return await finished(
        await tzurot("keys", "rotate", "--data-dir", str(data_dir), "--keyvault-addr", addr)
    )
