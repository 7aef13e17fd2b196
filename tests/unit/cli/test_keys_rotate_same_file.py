"""`tzurot keys rotate` adds a master key version only to the file keyvault reads: keyvault's
newest version (it re-reads its key file when asked where the rotation stands) must be the
newest in <data-dir>/master.key, or nothing is added (a wrong --data-dir, or --keyvault-addr
naming another environment's keyvault). A rewrap to another version than the one added is
told, and is a failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli.keys_rotate_helpers import local_state, rotate, serve
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc


class Keyvault(kv_grpc.KeyVaultServiceServicer):
    """A keyvault whose newest master key version is `newest`, and stays so (it reads
    another file than the one rotate adds to) unless `follows`."""

    def __init__(self, newest: int, *, follows: bool) -> None:
        self.newest, self.follows, self.rewraps = newest, follows, 0

    async def GetRewrapProgress(
        self, request: kv.GetRewrapProgressRequest, context: Any
    ) -> kv.GetRewrapProgressResponse:
        return kv.GetRewrapProgressResponse(master_key_version=self.newest, stale=0, total=3)

    async def RewrapKeys(
        self, request: kv.RewrapKeysRequest, context: Any
    ) -> AsyncIterator[kv.RewrapKeysResponse]:
        self.rewraps += 1
        version = self.newest + 1 if self.follows else self.newest
        yield kv.RewrapKeysResponse(master_key_version=version, rewrapped=3, total=3)


def keyvault_at(newest: int, *, follows: bool) -> Keyvault:
    return Keyvault(newest, follows=follows)  # type: ignore[abstract]  # the two RPCs it calls


async def rotate_against(data_dir: Path, keyvault: Keyvault) -> tuple[int, str, str]:
    server = await serve(data_dir, keyvault)
    try:
        return await rotate(data_dir, f"127.0.0.1:{server.port}")
    finally:
        await server.stop(None)


async def test_a_keyvault_on_another_version_than_the_file_gets_no_version(
    tmp_path: Path,
) -> None:
    data_dir = local_state(tmp_path)  # master.key: one key, version 1
    key_file = data_dir / "master.key"
    before = key_file.read_bytes()
    keyvault = keyvault_at(4, follows=True)

    code, out, err = await rotate_against(data_dir, keyvault)

    assert (code, out) == (2, "")
    assert err.startswith("tzurot: keyvault at 127.0.0.1:")
    assert err.endswith(
        f" has master key version 4 as its newest, {key_file} has 1: keyvault does not read "
        "that file (check --data-dir and --keyvault-addr); no version was added\n"
    )
    assert key_file.read_bytes() == before
    assert keyvault.rewraps == 0


@pytest.mark.parametrize("follows", [True, False])
async def test_a_rewrap_to_another_version_than_the_one_added_is_told(
    tmp_path: Path, follows: bool
) -> None:
    """Both at version 1 (two fresh environments): only the rewrap can tell."""
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"

    code, out, err = await rotate_against(data_dir, keyvault_at(1, follows=follows))

    assert f"Added master key version 2 to {key_file}" in out
    if follows:
        assert (code, err) == (0, "")
        assert "All 3 stale keys now use master key version 2." in out
    else:
        assert code == 1
        assert err == (
            "tzurot: keyvault re-wrapped to version 1, not to the version 2 added to "
            f"{key_file}: check that keyvault reads that file\n"
        )
