"""The master key file a version is added to is the one the rotation lock resolved and
locked; one that more than one name shares is refused.

`tzurot keys rotate` locks the file the key path resolves to, then waits for keyvault (up to
30 s) before it writes. A symlink re-pointed meanwhile (`ln -sfn new.key master.key`, a
dotfile manager) used to be resolved again for the write: the run wrote `new.key` while
holding `old.key.lock`, beside a run that locked `new.key.lock`, both rewriting one file
from what each read. Now the link is resolved once: re-pointed, nothing is added (exit 2).

A hard link is another name for the file that the rename does not update: it kept the old
ring (a keyvault reading it never saw the version), and it had a lock of its own. A key file
with more than one name is refused in one line, and nothing is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli.keys_rotate_helpers import (
    finished,
    key_file_in,
    local_state,
    serve,
    tzurot,
)
from tzurot.cli.keys import add_master_key_version, lock_file_of, rotation_lock
from tzurot.runtime.errors import StartupError
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc


def test_a_link_re_pointed_after_the_lock_gets_no_version(tmp_path: Path) -> None:
    old, new = key_file_in(tmp_path / "old"), key_file_in(tmp_path / "new")
    link = tmp_path / "master.key"
    link.symlink_to(old)
    before = old.read_bytes(), new.read_bytes()

    with rotation_lock(link) as locked:
        assert locked == Path(os.path.realpath(old))
        link.unlink()
        link.symlink_to(new)  # ln -sfn while keyvault answers
        with pytest.raises(StartupError) as refused:
            add_master_key_version(link, locked=locked)

    assert str(refused.value) == (
        f"master key file {link} now resolves to {os.path.realpath(new)}, not to {locked} as "
        "when it was locked; no version was added: run this again"
    )
    assert (old.read_bytes(), new.read_bytes()) == before


class Relinking(kv_grpc.KeyVaultServiceServicer):
    """A keyvault that answers where the rotation stands after `link` was re-pointed to
    `to` (as it might be while the command waits for the answer)."""

    def __init__(self, link: Path, to: Path) -> None:
        self.link, self.to, self.rewraps = link, to, 0

    async def GetRewrapProgress(
        self, request: kv.GetRewrapProgressRequest, context: Any
    ) -> kv.GetRewrapProgressResponse:
        self.link.unlink()
        self.link.symlink_to(self.to)
        return kv.GetRewrapProgressResponse(master_key_version=1, stale=0, total=3)

    async def RewrapKeys(self, request: kv.RewrapKeysRequest, context: Any) -> Any:
        self.rewraps += 1
        yield kv.RewrapKeysResponse(master_key_version=2, rewrapped=3, total=3)


async def test_rotate_adds_no_version_to_a_link_re_pointed_while_keyvault_answered(
    tmp_path: Path,
) -> None:
    data_dir = local_state(tmp_path)
    link = data_dir / "master.key"
    old = tmp_path / "old.key"
    link.rename(old)
    link.symlink_to(old)
    new = key_file_in(tmp_path / "elsewhere")
    before = old.read_bytes(), new.read_bytes()
    keyvault = Relinking(link, new)  # type: ignore[abstract]  # the two RPCs rotate calls
    server = await serve(data_dir, keyvault)
    try:
        code, out, err = await finished(
            await tzurot(
                "keys", "rotate", "--data-dir", str(data_dir),
                "--keyvault-addr", f"127.0.0.1:{server.port}",
            )
        )  # fmt: skip
    finally:
        await server.stop(None)

    assert (code, out) == (2, ""), err
    assert err == (
        f"tzurot: master key file {link} now resolves to {new.resolve()}, not to "
        f"{old.resolve()} as when it was locked; no version was added: run this again\n"
    )
    assert (old.read_bytes(), new.read_bytes()) == before
    assert keyvault.rewraps == 0


def test_a_key_file_with_another_hard_link_is_refused(tmp_path: Path) -> None:
    key_file = key_file_in(tmp_path)
    other = tmp_path / "also.key"
    os.link(key_file, other)
    before = key_file.read_bytes()

    for path in (key_file, other):
        with rotation_lock(path) as locked, pytest.raises(StartupError) as refused:
            add_master_key_version(path, locked=locked)
        assert str(refused.value) == (
            f"master key file {path} has 2 hard links: the rewrite would leave the others "
            "the old ring; make them symlinks to it; no version was added"
        )

    assert key_file.read_bytes() == other.read_bytes() == before
    assert os.stat(key_file).st_nlink == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "also.key", "also.key.lock", "master.key", "master.key.lock"
    ]  # fmt: skip
    assert lock_file_of(other) != lock_file_of(key_file)  # why it is refused, not locked
