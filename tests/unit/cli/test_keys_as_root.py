"""`tzurot keys` run as root changes only a key file of root's whose path only root may
change, as OpenSSH's StrictModes does.

It used to add a version to a user's key (`sudo tzurot keys add-version`) through a path that
user could change: swapping their folder for a symlink to a root-only one between two steps of
root's path walk gave them a file of their own there (root's lock, handed to the key's owner,
or the new ring, chowned to them), and a hard link planted at the lock's name could get a file
of root's handed to them. Now such a key, or a path through a folder (or a symlink in a
folder) another user may change, is refused in one line, exit 2, naming whom to run it as,
before anything is made or read; no lock is handed to anyone. A sticky folder of root's above
the key's own (/tmp; `mktemp -d -p /dev/shm`) is no reason to refuse it: no one else may
rename or remove a folder of root's in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import stat
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.unit.cli.keys_rotate_helpers import key_file_in, local_state, serve, slow_keyvault
from tests.unit.cli.keys_rotate_helpers import versions as versions_of
from tzurot.cli.__main__ import keys_add_version
from tzurot.cli.keys import add_master_key_version, lock_file_of, rotation_lock
from tzurot.cli.keys_rotate import rotate_master_key
from tzurot.runtime.errors import StartupError

USER = 65534
NAME = pwd.getpwuid(USER).pw_name
ONLY_ROOTS = "and root changes only a key file of root's in folders only root may change"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs as root only")


def users(*paths: Path) -> None:
    for path in paths:
        os.lchown(path, USER, USER)


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def refused_add(key_file: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`tzurot keys add-version` on `key_file`: exit 2 and its one line."""
    with pytest.raises(typer.Exit) as exit_:
        keys_add_version(master_key_file=key_file)
    assert exit_.value.exit_code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    return err.removeprefix("tzurot: ").removesuffix("\n")


def test_a_users_key_is_refused_naming_the_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    key_file = key_file_in(home)
    users(home, key_file)
    before = key_file.read_bytes()

    assert refused_add(key_file, capsys) == (
        f"master key file {key_file}: {home} is {NAME}'s, {ONLY_ROOTS}: run it as {NAME}"
    )
    with pytest.raises(StartupError), rotation_lock(key_file):
        pass
    with pytest.raises(StartupError):
        add_master_key_version(key_file)

    assert key_file.read_bytes() == before
    assert listing(home) == ["master.key"]  # no lock, no temporary file


def test_a_users_key_in_a_folder_of_roots_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = key_file_in(tmp_path / "keys")
    users(key_file)

    assert refused_add(key_file, capsys) == (
        f"master key file {key_file} is {NAME}'s, {ONLY_ROOTS}: run it as {NAME}"
    )
    assert listing(key_file.parent) == ["master.key"]


async def test_rotate_on_a_users_key_asks_keyvault_nothing(tmp_path: Path) -> None:
    data_dir = local_state(tmp_path)
    users(tmp_path, data_dir, data_dir / "master.key")
    before = (data_dir / "master.key").read_bytes()
    keyvault = slow_keyvault(released=True)
    server = await serve(data_dir, keyvault)
    try:
        with pytest.raises(StartupError) as refused:
            await rotate_master_key(
                data_dir / "master.key",
                f"127.0.0.1:{server.port}",
                data_dir / "certs" / "cli",
                add_version=True,
                batch_size=0,
            )
    finally:
        await server.stop(None)
    assert str(refused.value).endswith(f": run it as {NAME}")
    assert (keyvault.asked, keyvault.rewrapping.is_set()) == (0, False)
    assert (data_dir / "master.key").read_bytes() == before
    assert not lock_file_of(data_dir / "master.key").exists()


OPEN = [("key's", 0o777), ("key's", 0o770), ("key's", 0o1777), ("above", 0o777), ("above", 0o775)]


@pytest.mark.parametrize(("where", "mode"), OPEN)
def test_a_folder_others_may_write_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, mode: int
) -> None:
    """A key of root's there: kept elsewhere, not run as anyone else."""
    key_file = key_file_in(tmp_path / "open" / "keys" if where == "above" else tmp_path / "open")
    (tmp_path / "open").chmod(mode)
    before = key_file.read_bytes()

    assert refused_add(key_file, capsys) == (
        f"master key file {key_file}: {tmp_path / 'open'} may be written by others than "
        f"root (mode {mode:04o}), {ONLY_ROOTS}: move it to a folder only root may change"
    )
    assert key_file.read_bytes() == before
    assert listing(key_file.parent) == ["master.key"]


@pytest.mark.parametrize("chain", [False, True])
def test_a_symlink_in_a_users_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], chain: bool
) -> None:
    """The user could point it anywhere between two steps: at a file of root's that reads
    as a ring (one line without a colon, /etc/hostname) to rewrite, say."""
    key_file = key_file_in(tmp_path / "safe")
    home = tmp_path / "home"
    home.mkdir()
    (home / "link").symlink_to(Path("..") / "safe" / "master.key")
    users(home, home / "link")
    path = home / "link"
    if chain:  # a link of root's, in a folder of root's, to the user's link
        path = tmp_path / "roots-link"
        path.symlink_to(Path("home") / "link")
    before = key_file.read_bytes()

    assert refused_add(path, capsys) == (
        f"master key file {path}: {home} is {NAME}'s, {ONLY_ROOTS}: move it to a folder only "
        "root may change"
    )
    assert key_file.read_bytes() == before
    assert listing(key_file.parent) == ["master.key"]


def test_a_sticky_folder_of_roots_above_the_keys_own_is_no_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    shm.chmod(0o1777)  # as /tmp and /dev/shm
    private = shm / "tmp.x1"
    private.mkdir(0o700)  # mktemp -d
    key_file = key_file_in(private)
    (shm / "via").symlink_to(Path("tmp.x1") / "master.key")  # a link of root's there

    for path in (key_file, shm / "via"):
        keys_add_version(master_key_file=path)  # no typer.Exit: 0
    assert capsys.readouterr().err == ""

    assert versions_of(key_file) == ["1", "2", "3"]
    lock = lock_file_of(key_file).stat()
    assert (lock.st_uid, stat.S_IMODE(lock.st_mode)) == (0, 0o600)  # root's, never handed on

    users(shm / "via")  # a user's link in the sticky folder: theirs to re-point
    assert refused_add(shm / "via", capsys).startswith(f"master key file {shm / 'via'}: {shm} ")


@pytest.mark.parametrize("race", ["lock", "temporary", "hard-link"])
def test_nothing_is_handed_to_the_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any, race: str
) -> None:
    """Review 278's races, the user's steps played by hooks: `.data` swapped for a link to a
    root-only folder just before the lock is opened, or the temporary file made (the ring's
    `#` lines the user's); a hard link planted at the lock's name to an empty file of root's,
    unlinked once root opened it (as with fs.protected_hardlinks=0)."""
    home = tmp_path / "home"
    protected = tmp_path / "etc_bash_completion.d"
    protected.mkdir()
    key_file = key_file_in(home / ".data")
    key_file.write_text("#!/bin/sh\n# echo pwned\n" + key_file.read_text())
    users(home, home / ".data", key_file)
    before = key_file.read_bytes()
    victim = tmp_path / "ld.so.preload"
    victim.touch(0o644)
    lock = lock_file_of(key_file)
    real_open, real_flock = os.open, fcntl.flock

    def swapping_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        ending = ".lock" if race == "lock" else ".tmp"
        if str(path).endswith(ending) and not (home / ".data").is_symlink():
            os.rename(home / ".data", home / ".data.real")
            os.symlink(protected, home / ".data")
        return real_open(path, flags, *args, **kwargs)

    def unlinking_flock(fd: int, operation: int) -> None:
        lock.unlink(missing_ok=True)
        real_flock(fd, operation)

    if race == "hard-link":
        os.link(victim, lock)
        monkeypatch.setattr(fcntl, "flock", unlinking_flock)
    else:
        monkeypatch.setattr(os, "open", swapping_open)

    with contextlib.suppress(typer.Exit):
        keys_add_version(master_key_file=key_file)

    assert listing(protected) == []
    assert (victim.stat().st_uid, victim.stat().st_gid) == (0, 0)
    assert key_file.read_bytes() == before
    assert capsys.readouterr().err.endswith(f": run it as {NAME}\n")


def test_a_run_not_as_root_is_not_looked_at(tmp_path: Path, monkeypatch: Any) -> None:
    """What a user may write is theirs to write (here root, seen as another uid)."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)
    key_file = key_file_in(home)
    users(key_file)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    with rotation_lock(key_file) as locked:
        assert add_master_key_version(key_file, locked=locked) == 2
    assert versions_of(key_file) == ["1", "2"]
