"""The rotation lock where it may not be written, and when it cannot be taken.

`tzurot keys rotate --no-add-version` neither reads nor writes the key file and takes no
lock: on a data dir it may not write (read-only, another user's: a root-owned `.data` from a
sudo run), or where the lock cannot be made or taken for any reason (a full disk, NFS without
its lock service), it rewraps all the same, saying nothing of a lock. Adding a version there
is still refused. A lock file we may only read (made readable to others by its owner, or on
a mount made read-only since) serves read-only (flock needs no write access); the CLI makes
it 0600, so one made by another user's run is not opened at all. Any other failure to take
the lock is one line, exit 2; the lock is named beside the key file's resolved path, and a
missing key file gets none.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.unit.cli.keys_rotate_helpers import (
    bound_tzurot,
    key_file_in,
    local_state,
    serve,
    slow_keyvault,
    versions,
)
from tzurot.cli.__main__ import keys_add_version
from tzurot.cli.keys import RotationRunning, lock_file_of, rotation_lock
from tzurot.cli.keys_rotate import rotate_master_key
from tzurot.runtime.errors import StartupError


@pytest.mark.parametrize("add_version", [False, True])
async def test_a_data_dir_it_may_not_write_stops_only_a_rotation_that_adds(
    tmp_path: Path, add_version: bool
) -> None:
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    before = key_file.read_bytes()
    keyvault = slow_keyvault(released=True)
    server = await serve(data_dir, keyvault)
    add = [] if add_version else ["--no-add-version"]
    data_dir.chmod(0o555)  # read-only to its owner (and to root without its override)
    try:
        code, out, err = await bound_tzurot(
            "keys", "rotate", *add, "--data-dir", str(data_dir),
            "--keyvault-addr", f"127.0.0.1:{server.port}",
        )  # fmt: skip
    finally:
        data_dir.chmod(0o755)
        await server.stop(None)
    lock = lock_file_of(key_file)
    assert not lock.exists()
    assert key_file.read_bytes() == before
    if add_version:  # it would write the key file there: refused before keyvault is asked
        assert (code, out) == (2, ""), err
        assert err == f"tzurot: cannot open the rotation lock {lock}: Permission denied\n"
        assert (keyvault.asked, keyvault.rewrapping.is_set()) == (0, False)
        return
    assert (code, err) == (0, ""), out + err
    assert keyvault.rewrapping.is_set()  # went on to keyvault
    assert "All 3 stale keys now use master key version 2." in out


async def test_a_lock_file_we_may_only_read_serves_read_only(tmp_path: Path) -> None:
    key_file = key_file_in(tmp_path)
    lock = lock_file_of(key_file)
    lock.touch()
    if os.geteuid() == 0:
        os.chown(lock, 65534, 65534)  # nobody's, made readable to all by hand
        lock.chmod(0o644)
    else:
        lock.chmod(0o444)  # ours, but read-only: as such a lock of another user is to us
    add = ("keys", "add-version", "--master-key-file", str(key_file))

    with rotation_lock(key_file):  # held: the read-only descriptor is refused the lock too
        code, out, err = await bound_tzurot(*add)
    assert (code, out) == (2, ""), err
    assert "another master key rotation is running" in err
    code, out, err = await bound_tzurot(*add)

    assert code == 0, err
    assert out == f"Added master key version 2 to {key_file}\n"
    assert versions(key_file) == ["1", "2"]


async def test_a_lock_another_users_run_made_is_not_opened(tmp_path: Path) -> None:
    """The CLI makes the lock 0600: another user's is no lock to us, not even read-only."""
    if os.geteuid() != 0:
        pytest.skip("making another user's lock file needs root")
    key_file = key_file_in(tmp_path)
    before = key_file.read_bytes()
    lock = lock_file_of(key_file)
    with rotation_lock(key_file):
        pass
    os.chown(lock, 65534, 65534)  # as a run of nobody's made it

    code, out, err = await bound_tzurot("keys", "add-version", "--master-key-file", str(key_file))

    assert (code, out) == (2, ""), err
    assert err == f"tzurot: cannot open the rotation lock {lock}: Permission denied\n"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert key_file.read_bytes() == before


def fail_flock(monkeypatch: Any, error: OSError) -> None:
    def flock(*_: Any) -> None:
        raise error

    monkeypatch.setattr(fcntl, "flock", flock)


def fail_making(monkeypatch: Any, lock: Path, error: int) -> None:
    """Making (or opening) `lock` fails with `error`, also as root (simulated for it alone)."""
    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path) == lock:
            raise OSError(error, os.strerror(error))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)


LOCK_FAILURES = [
    ("open", errno.EROFS),  # a read-only mount
    ("open", errno.EPERM),
    ("open", errno.EACCES),
    ("open", errno.ENOSPC),  # a full disk
    ("open", errno.EDQUOT),
    ("flock", errno.ENOLCK),  # NFS without its lock service
]


@pytest.mark.parametrize(("failing", "errno_"), LOCK_FAILURES)
async def test_a_lock_that_cannot_be_made_or_taken_stops_only_adding_a_version(
    tmp_path: Path,
    monkeypatch: Any,
    capsys: pytest.CaptureFixture[str],
    failing: str,
    errno_: int,
) -> None:
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    before = key_file.read_bytes()
    lock = lock_file_of(key_file)
    if failing == "open":
        fail_making(monkeypatch, lock, errno_)
    else:
        fail_flock(monkeypatch, OSError(errno_, os.strerror(errno_)))
    server = await serve(data_dir, slow_keyvault(released=True))
    addr, certs = f"127.0.0.1:{server.port}", data_dir / "certs" / "cli"
    try:
        code = await rotate_master_key(key_file, addr, certs, add_version=False, batch_size=0)
        out, err = capsys.readouterr()
        with pytest.raises(StartupError) as refused:
            await rotate_master_key(key_file, addr, certs, add_version=True, batch_size=0)
    finally:
        await server.stop(None)
    assert (code, err) == (0, "")
    assert "All 3 stale keys now use master key version 2." in out
    refusal = "cannot open" if failing == "open" else "cannot take"
    assert str(refused.value) == f"{refusal} the rotation lock {lock}: {os.strerror(errno_)}"
    assert key_file.read_bytes() == before


def test_any_other_lock_failure_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = key_file_in(tmp_path)
    before = key_file.read_bytes()
    lock = lock_file_of(key_file)
    fail_flock(monkeypatch, OSError(errno.ENOLCK, "No locks available"))  # NFS, no lockd

    with pytest.raises(typer.Exit) as exit_:
        keys_add_version(master_key_file=key_file)

    assert exit_.value.exit_code == 2
    assert capsys.readouterr().err == (
        f"tzurot: cannot take the rotation lock {lock}: No locks available\n"
    )
    assert key_file.read_bytes() == before
    real_fstat = os.fstat

    def fstat(fd: int) -> os.stat_result:
        if os.readlink(f"/proc/self/fd/{fd}") == str(lock):
            raise OSError(errno.EIO, "Input/output error")
        return real_fstat(fd)

    monkeypatch.setattr(os, "fstat", fstat)
    with (
        pytest.raises(StartupError, match=f"^cannot take the rotation lock {lock}: Input/out"),
        rotation_lock(key_file),
    ):
        pass


def test_two_paths_to_one_folder_share_one_lock(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key_file = key_file_in(data)
    (tmp_path / "link").symlink_to(data)
    through_link = tmp_path / "link" / "master.key"

    with rotation_lock(key_file), pytest.raises(RotationRunning), rotation_lock(through_link):
        pass
    assert lock_file_of(through_link) == Path(os.path.realpath(data)) / "master.key.lock"


def test_a_missing_key_file_leaves_no_lock_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "master.key"

    with pytest.raises(typer.Exit) as exit_:
        keys_add_version(master_key_file=key_file)

    assert exit_.value.exit_code == 2
    assert capsys.readouterr().err.startswith(f"tzurot: cannot read master key file {key_file}")
    assert list(tmp_path.iterdir()) == []
