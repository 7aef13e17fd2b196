"""`tzurot keys rotate` asks keyvault first, and adds a master key version only once it
answered: an unreachable keyvault leaves the key file as it was. A rewrap that fails after
the version was added keeps it (keyvault reads the file as the rewrap starts and may seal
keys with it at once) and says how to finish: `--no-add-version`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tzurot.cli.mesh import ensure_master_key
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import Internal
from tzurot.runtime.server import ServiceRegistration, create_server
from tzurot.runtime.tls import generate_dev_pki
from tzurot.testing.processes import free_port
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc


async def rotate(data_dir: Path, addr: str) -> tuple[int, str, str]:
    """`tzurot keys rotate` (adding a version, the default) in a process; this test's loop
    keeps serving meanwhile."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tzurot.cli", "keys", "rotate",
        "--data-dir", str(data_dir), "--keyvault-addr", addr,
        env={**clean, "COLUMNS": "100"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def local_state(tmp_path: Path) -> Path:
    data_dir = tmp_path / ".data"
    generate_dev_pki(data_dir / "certs", ["keyvault", "cli"])
    ensure_master_key(data_dir / "master.key")
    return data_dir


async def test_an_unreachable_keyvault_leaves_the_key_file_as_it_was(tmp_path: Path) -> None:
    data_dir = local_state(tmp_path)
    before = (data_dir / "master.key").read_bytes()
    code, out, err = await rotate(data_dir, f"127.0.0.1:{free_port()}")
    assert code == 3, err
    assert out == ""
    assert err.startswith("tzurot: [unavailable] cannot reach keyvault at 127.0.0.1:")
    assert err.count("\n") == 1
    assert (data_dir / "master.key").read_bytes() == before  # no version 2 left behind


class RewrapFails(kv_grpc.KeyVaultServiceServicer):
    """A keyvault that answers where the rotation stands, then fails the rewrap."""

    async def GetRewrapProgress(
        self, request: kv.GetRewrapProgressRequest, context: Any
    ) -> kv.GetRewrapProgressResponse:
        return kv.GetRewrapProgressResponse(master_key_version=1, stale=0, total=3)

    async def RewrapKeys(
        self, request: kv.RewrapKeysRequest, context: Any
    ) -> AsyncIterator[kv.RewrapKeysResponse]:
        raise Internal("rewrap stopped: the database went away")
        yield kv.RewrapKeysResponse()  # a stream handler


async def test_a_rewrap_failing_after_the_version_was_added_keeps_it_and_says_so(
    tmp_path: Path,
) -> None:
    data_dir = local_state(tmp_path)
    server = await create_server(
        service="keyvault",
        settings=ServiceSettings(tls_dir=data_dir / "certs" / "keyvault", listen="127.0.0.1:0"),
        registrations=[
            ServiceRegistration(
                "tzurot.v1.KeyVaultService",
                lambda s: kv_grpc.add_KeyVaultServiceServicer_to_server(
                    RewrapFails(),  # type: ignore[abstract]  # the two RPCs rotate calls
                    s,
                ),
            )
        ],
        default_allowed=frozenset({"cli"}),
    )
    await server.start()
    try:
        code, out, err = await rotate(data_dir, f"127.0.0.1:{server.port}")
    finally:
        await server.stop(None)
    key_file = data_dir / "master.key"
    assert code == 1, err
    assert f"Added master key version 2 to {key_file}" in out
    assert [line.split(":")[0] for line in key_file.read_text().split()] == ["1", "2"]
    assert err.splitlines() == [
        f"tzurot: master key version 2 stays in {key_file} (keyvault may already use it); "
        "`tzurot keys rotate --no-add-version` finishes the rotation",
        "tzurot: [internal] rewrap stopped: the database went away",
    ]
    assert key_file.read_text().split()[0].split(":")[1] not in out + err
