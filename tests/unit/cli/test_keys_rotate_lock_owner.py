"""The rotation lock that root makes beside a user's key file (`sudo tzurot keys add-version`)
is given the key file's owner and group, so the owner's own runs may take it later. It used
to stay root's, mode 0600: every later `keys add-version` or adding `keys rotate` of the
owner was refused ("cannot open the rotation lock ...: Permission denied"), with no way out
but deleting it by hand. A lock file left root's by such an earlier run is given over by the
next run as root. Only an empty file with no other name is given away: a hard link planted
at the lock's name (to a file of root's) is not.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

import pytest

from tests.unit.cli.keys_rotate_helpers import key_file_in, versions
from tzurot.cli.keys import add_master_key_version, lock_file_of, rotation_lock

USER = 65534


@pytest.fixture
def users_key(tmp_path: Path) -> Path:
    """`<tmp>/home/master.key` and its folder, a user's (nobody's); the test as root."""
    if os.geteuid() != 0:
        pytest.skip("a file of another user's needs root to make")
    home = tmp_path / "home"
    home.mkdir()
    key_file = key_file_in(home)
    for path in (home, key_file):
        os.chown(path, USER, USER)
    return key_file


def owner_may_lock(lock: Path) -> int:
    """0 when the user (nobody, no other group) may open `lock` read-write and flock it;
    else the errno. The folder is reached through a descriptor opened before the switch, as
    the user reaches their own folder (this test's temporary folders are root's, 0700)."""
    folder = os.open(lock.parent, os.O_RDONLY | os.O_DIRECTORY)
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then _exit
        code = 0
        try:
            os.setgroups([])
            os.setgid(USER)
            os.setuid(USER)
            fd = os.open(lock.name, os.O_RDWR | os.O_NOFOLLOW, dir_fd=folder)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            code = exc.errno or 1
        os._exit(code)
    os.close(folder)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_lock_root_makes_beside_a_users_key_is_the_users(users_key: Path) -> None:
    assert owner_may_lock(lock_file_of(users_key)) == errno.ENOENT  # no lock yet
    with rotation_lock(users_key) as locked:
        assert add_master_key_version(users_key, locked=locked) == 2

    lock = lock_file_of(users_key)
    info = lock.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (USER, USER, 0o600)
    assert owner_may_lock(lock) == 0
    key = users_key.stat()
    assert (key.st_uid, key.st_gid, stat.S_IMODE(key.st_mode)) == (USER, USER, 0o600)
    assert versions(users_key) == ["1", "2"]


def test_a_lock_left_roots_by_an_earlier_run_is_given_over(users_key: Path) -> None:
    lock = lock_file_of(users_key)
    lock.touch(0o600)  # as an earlier sudo run left it
    assert owner_may_lock(lock) == errno.EACCES

    with rotation_lock(users_key):
        pass

    assert (lock.stat().st_uid, lock.stat().st_gid) == (USER, USER)
    assert owner_may_lock(lock) == 0


@pytest.mark.parametrize("planted", ["hard-link", "not-empty"])
def test_only_an_empty_lock_file_with_one_name_is_given_away(
    users_key: Path, tmp_path: Path, planted: str
) -> None:
    lock = lock_file_of(users_key)
    roots = tmp_path / "roots-file"
    roots.write_text("root's" if planted == "hard-link" else "")
    roots.chmod(0o600)
    if planted == "hard-link":
        os.link(roots, lock)
    else:
        lock.write_text("something of root's")
        lock.chmod(0o600)

    with rotation_lock(users_key):
        pass

    assert (lock.stat().st_uid, lock.stat().st_gid) == (0, 0)
    assert roots.stat().st_uid == 0
