"""`tzurot keys rotate` asks keyvault first, and adds a master key version only once it
answered: an unreachable keyvault leaves the key file as it was. A rewrap that fails after
the version was added keeps it (keyvault reads the file as the rewrap starts and may seal
keys with it at once) and says how to finish: `--no-add-version`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.unit.cli.keys_rotate_helpers import local_state, rotate, serve
from tzurot.runtime.errors import Internal
from tzurot.testing.processes import free_port
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc


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
    rewrap_fails = RewrapFails()  # type: ignore[abstract]  # the two RPCs rotate calls
    server = await serve(data_dir, rewrap_fails)
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
