"""One master key rotation at a time: `tzurot keys rotate` holds an exclusive lock beside
master.key for the whole rotation, so a second run (or `keys add-version`) meanwhile says
another rotation is running and exits 2 at once, adding no version and asking keyvault
nothing. Two runs used to both add a version, each rewriting the file from what it had read
through the same temporary file: a version keyvault may already seal keys with could be lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tzurot.cli.keys import RotationRunning, lock_file_of, rotation_lock
from tzurot.cli.mesh import ensure_master_key
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import StartupError
from tzurot.runtime.server import RunningServer, ServiceRegistration, create_server
from tzurot.runtime.tls import generate_dev_pki
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc


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


async def serve(data_dir: Path, keyvault: SlowKeyvault) -> RunningServer:
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


async def tzurot(*args: str) -> asyncio.subprocess.Process:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tzurot.cli", *args,
        env={**clean, "COLUMNS": "100"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip


async def finished(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def local_state(tmp_path: Path) -> Path:
    data_dir = tmp_path / ".data"
    generate_dev_pki(data_dir / "certs", ["keyvault", "cli"])
    ensure_master_key(data_dir / "master.key")
    return data_dir


def versions(key_file: Path) -> list[str]:
    return [line.split(":")[0] for line in key_file.read_text().split()]


@pytest.mark.parametrize("second", [["--no-add-version"], []])
async def test_a_second_rotation_while_one_runs_is_refused_at_once(
    tmp_path: Path, second: list[str]
) -> None:
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    keyvault = SlowKeyvault()  # type: ignore[abstract]  # the two RPCs rotate calls
    server = await serve(data_dir, keyvault)
    rotate = ["keys", "rotate", "--data-dir", str(data_dir)]
    addr = ["--keyvault-addr", f"127.0.0.1:{server.port}"]
    try:
        first = await tzurot(*rotate, *addr)
        await asyncio.wait_for(keyvault.rewrapping.wait(), 60)  # version 2 added, rewrapping
        code, out, err = await finished(await tzurot(*rotate, *addr, *second))
        assert keyvault.asked == 1  # the second run asked keyvault nothing
        keyvault.release.set()
        first_code, first_out, first_err = await finished(first)
    finally:
        await server.stop(None)
    assert (code, out) == (2, ""), err
    assert err == (
        f"tzurot: another master key rotation is running on {key_file} (it holds "
        f"{lock_file_of(key_file)}); wait for it to finish, then run this again\n"
    )
    assert first_code == 0, first_out + first_err
    assert "Added master key version 2" in first_out
    assert versions(key_file) == ["1", "2"]  # the second run added no version 3


async def test_add_version_is_refused_while_a_rotation_holds_the_lock(tmp_path: Path) -> None:
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    before = key_file.read_bytes()
    with rotation_lock(key_file):
        code, out, err = await finished(
            await tzurot("keys", "add-version", "--master-key-file", str(key_file))
        )
    assert (code, out) == (2, ""), err
    assert "another master key rotation is running" in err
    assert key_file.read_bytes() == before
    code, out, err = await finished(
        await tzurot("keys", "add-version", "--master-key-file", str(key_file))
    )
    assert code == 0, err  # the lock went with the rotation
    assert versions(key_file) == ["1", "2"]


def key_file_in(folder: Path) -> Path:
    key_file = folder / "master.key"
    ensure_master_key(key_file)
    return key_file


def test_two_concurrent_holders_in_one_process_are_refused_too(tmp_path: Path) -> None:
    key_file = key_file_in(tmp_path)
    with rotation_lock(key_file), pytest.raises(RotationRunning), rotation_lock(key_file):
        pass
    with rotation_lock(key_file):  # released: taken again
        pass
    assert os.stat(lock_file_of(key_file)).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("target", ["existing", "dangling"])
def test_a_lock_file_swapped_for_a_symlink_is_not_followed(tmp_path: Path, target: str) -> None:
    key_file = key_file_in(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    if target == "existing":
        elsewhere.write_text("not ours")
    lock_file_of(key_file).symlink_to(elsewhere)
    with pytest.raises(StartupError, match="it is a symlink"), rotation_lock(key_file):
        pass
    assert lock_file_of(key_file).is_symlink()
    # Opened through the link (then refused), it would have made the file it points to.
    assert elsewhere.exists() == (target == "existing")


def test_a_lock_left_by_a_killed_process_is_taken_by_the_next_run(tmp_path: Path) -> None:
    """The flock goes with its holder: a rotation killed with SIGKILL leaves its lock file
    behind (harmless), not the lock."""
    key_file = key_file_in(tmp_path)
    with subprocess.Popen(  # our own interpreter, no shell
        [sys.executable, "-c", HOLD, str(key_file)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "held\n"
            with pytest.raises(RotationRunning), rotation_lock(key_file):
                pass
        finally:
            holder.kill()
            holder.wait(30)
    assert holder.returncode == -signal.SIGKILL
    assert lock_file_of(key_file).exists()  # left in place
    with rotation_lock(key_file) as unlocked:
        assert unlocked is None


HOLD = """
import sys, time
from pathlib import Path
from tzurot.cli.keys import rotation_lock
with rotation_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(3600)
"""
