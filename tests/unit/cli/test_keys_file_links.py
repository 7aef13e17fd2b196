"""`tzurot keys add-version` on a key file that is a symlink writes through it.

A dotfile set-up or a mounted secret reaches the key file through a link; keyvault may read
the file the link names. The rewrite used to rename its temporary file over the link itself:
the link became a regular file of its own, and the file keyvault reads never got the version.
Now the temporary file is made beside the file the link names and renamed over that file: the
link stays and reads the new ring, a file shared with its group (0640) stays so (its mode,
test_keys_file_modes.py), and one that cannot be written there says where it points. Any
rewrite syncs the folder after the rename (the new version outlives a crash). A folder sync
that fails for another reason than a file system that cannot sync a folder (EIO) is one
line, exit 2, saying the version is in the file but may not survive a crash: it used to be
ignored, and the version reported added as if it were durable. `keys rotate` stops there,
before the rewrap, and says how to finish (`--no-add-version`): it said nothing, and running
it again added another version.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.unit.cli.keys_rotate_helpers import (
    bound_tzurot,
    finished,
    key_file_in,
    local_state,
    serve,
    slow_keyvault,
    tzurot,
    versions,
)
from tzurot.cli.__main__ import keys_add_version
from tzurot.cli.keys import add_master_key_version, lock_file_of, rotation_lock
from tzurot.cli.keys_rotate import rotate_master_key
from tzurot.runtime.errors import StartupError


def linked_key(tmp_path: Path) -> tuple[Path, Path]:
    """`dotfiles/master.key` -> `../secrets/tzurot.key` (a single key, mode 0640)."""
    target = tmp_path / "secrets" / "tzurot.key"
    target.parent.mkdir()
    target.write_text("A" * 43 + "=\n")
    target.chmod(0o640)
    link = tmp_path / "dotfiles" / "master.key"
    link.parent.mkdir()
    link.symlink_to(Path("..") / "secrets" / "tzurot.key")
    return link, target


async def test_add_version_writes_through_a_symlink_and_keeps_it(tmp_path: Path) -> None:
    link, target = linked_key(tmp_path)

    code, out, err = await finished(
        await tzurot("keys", "add-version", "--master-key-file", str(link))
    )

    assert (code, err) == (0, "")
    assert out == f"Added master key version 2 to {link}\n"
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("..") / "secrets" / "tzurot.key")
    assert versions(target) == ["1", "2"]
    assert target.read_text().startswith("1:" + "A" * 43 + "=\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # shared on purpose: kept
    assert sorted(p.name for p in link.parent.iterdir()) == ["master.key"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["tzurot.key", "tzurot.key.lock"]
    assert lock_file_of(link) == target.with_name("tzurot.key.lock")


async def test_a_target_it_may_not_write_is_one_line_naming_it(tmp_path: Path) -> None:
    link, target = linked_key(tmp_path)
    before = target.read_bytes()
    with rotation_lock(link):  # made by an earlier run: this one gets as far as the write
        pass
    target.parent.chmod(0o555)  # the link's folder stays writable
    try:
        code, out, err = await bound_tzurot("keys", "add-version", "--master-key-file", str(link))
    finally:
        target.parent.chmod(0o755)

    assert (code, out) == (2, ""), err
    assert err == (
        f"tzurot: cannot write master key file {link} (a symlink to {target}): Permission denied\n"
    )
    assert link.is_symlink()
    assert target.read_bytes() == before


def test_the_folder_is_synced_after_the_rename(tmp_path: Path, monkeypatch: Any) -> None:
    key_file = key_file_in(tmp_path)
    synced: list[list[str]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            assert os.path.samefile(f"/proc/self/fd/{fd}", tmp_path)
            synced.append(versions(key_file))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    add_master_key_version(key_file)

    assert synced == [["1", "2"]]  # once, after the new ring was in place


def fail_folder_sync(monkeypatch: Any, error: int) -> None:
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(error, os.strerror(error))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("error", [errno.EINVAL, errno.EOPNOTSUPP])
def test_a_file_system_that_cannot_sync_a_folder_is_left_to_itself(
    tmp_path: Path, monkeypatch: Any, error: int
) -> None:
    key_file = key_file_in(tmp_path)
    fail_folder_sync(monkeypatch, error)

    assert add_master_key_version(key_file) == 2
    assert versions(key_file) == ["1", "2"]


def test_a_folder_sync_that_fails_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = key_file_in(tmp_path)
    fail_folder_sync(monkeypatch, errno.EIO)

    with pytest.raises(typer.Exit) as exit_:
        keys_add_version(master_key_file=key_file)

    assert exit_.value.exit_code == 2
    assert capsys.readouterr() == (
        "",
        f"tzurot: master key version 2 was added to {key_file} but may not survive a crash: "
        f"cannot sync its folder {os.path.realpath(tmp_path)}: Input/output error\n",
    )
    assert versions(key_file) == ["1", "2"]  # written: the line says so


def real_path(path: Path) -> str:
    return os.path.realpath(path)


async def test_a_folder_sync_that_fails_in_rotate_says_how_to_finish(
    tmp_path: Path, monkeypatch: Any
) -> None:
    data_dir = local_state(tmp_path)
    key_file, folder = data_dir / "master.key", real_path(data_dir)
    keyvault = slow_keyvault(released=True)
    server = await serve(data_dir, keyvault)
    fail_folder_sync(monkeypatch, errno.EIO)
    try:
        with pytest.raises(StartupError) as stopped:
            await rotate_master_key(
                key_file,
                f"127.0.0.1:{server.port}",
                data_dir / "certs" / "cli",
                add_version=True,
                batch_size=0,
            )
    finally:
        await server.stop(None)

    assert str(stopped.value) == (
        f"master key version 2 was added to {key_file} but may not survive a crash: cannot "
        f"sync its folder {folder}: Input/output error; run `sync`, then "
        "`tzurot keys rotate --no-add-version` to finish the rotation (`keys rotate` alone "
        "would add another version)"
    )
    assert versions(key_file) == ["1", "2"]
    assert not keyvault.rewrapping.is_set()  # not resealed under a rename that may not last
