"""The rotation lock where it may not be written, and when it cannot be taken.

`tzurot keys rotate --no-add-version` writes nothing to the key file: on a data dir it may
not write (read-only, another user's: a root-owned `.data` from a sudo run) it goes on to
keyvault without the lock, and says so. Adding a version there is still refused. A lock file
we may only read (made readable to others by its owner, or on a mount made read-only since)
serves read-only (flock needs no write access); the CLI makes it 0600, so one made by another
user's run is not opened at all. Any other failure to take the lock is one line, exit 2;
the lock is named in the key file's resolved folder, and a missing key file gets none.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.unit.cli.test_keys_rotate_lock import (
    SlowKeyvault,
    finished,
    key_file_in,
    local_state,
    serve,
    versions,
)
from tests.unit.cli.unprivileged import bound_by_modes, skip_when_not_dropped
from tzurot.cli.__main__ import keys_add_version
from tzurot.cli.keys import RotationRunning, lock_file_of, rotation_lock
from tzurot.runtime.errors import StartupError


async def bound_tzurot(*args: str) -> tuple[int, str, str]:
    """`tzurot args` run as a user whom file modes bind (tests/unit/cli/unprivileged.py)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    process = await asyncio.create_subprocess_exec(
        *bound_by_modes([sys.executable, "-m", "tzurot.cli", *args]),
        env={**clean, "COLUMNS": "100"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    code, out, err = await finished(process)
    skip_when_not_dropped(code, err)
    return code, out, err


@pytest.mark.parametrize("add_version", [False, True])
async def test_a_data_dir_it_may_not_write_stops_only_a_rotation_that_adds(
    tmp_path: Path, add_version: bool
) -> None:
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    before = key_file.read_bytes()
    keyvault = SlowKeyvault()  # type: ignore[abstract]  # the two RPCs rotate calls
    keyvault.release.set()
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
    assert code == 0, out + err
    assert keyvault.rewrapping.is_set()  # went on to keyvault
    assert "All 3 stale keys now use master key version 2." in out
    assert err == (
        f"tzurot: rewrapping without the rotation lock (cannot open {lock}: Permission denied)\n"
    )


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


@pytest.mark.parametrize(
    ("errno_", "why"),
    [
        (errno.EROFS, "Read-only file system"),
        (errno.EPERM, "Operation not permitted"),
        (errno.EACCES, "Permission denied"),
    ],
)
def test_when_nothing_is_written_a_lock_it_may_not_make_is_no_lock(
    tmp_path: Path, monkeypatch: Any, errno_: int, why: str
) -> None:
    """A read-only mount (EROFS), as root too (simulated for the lock file alone)."""
    key_file = key_file_in(tmp_path)
    lock = lock_file_of(key_file)
    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path) == lock:
            raise OSError(errno_, os.strerror(errno_))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    with rotation_lock(key_file, writes=False) as unlocked:
        assert unlocked == f"cannot open {lock}: {why}"
    with (
        pytest.raises(StartupError, match=f"^cannot open the rotation lock {lock}: {why}$"),
        rotation_lock(key_file, writes=True),
    ):
        pass


def fail_flock(monkeypatch: Any, error: OSError) -> None:
    def flock(*_: Any) -> None:
        raise error

    monkeypatch.setattr(fcntl, "flock", flock)


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
        rotation_lock(key_file, writes=False),  # only making it may fail quietly
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
