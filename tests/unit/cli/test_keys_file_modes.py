"""The mode and owner `tzurot keys add-version` gives the rewritten master key file.

The mode comes from the file, however the path is spelled (a plain path, a symlink to the
file, a symlinked folder): 0600, or 0640 when it was readable by its group and not by others
(shared with a group on purpose) and that group could be kept. A key reached through a
symlink used to keep any mode, 0644 or 0666 (anyone could append a version whose key they
know), silently; the same file reached through a symlinked folder, and a plain file shared
0640, were made 0600 (cutting off the group's reader). What is taken away is said in one
line. The new ring is ours (as root, only a key of root's is rewritten:
test_keys_as_root.py); its group is given where we may. A group that cannot be kept (not
root, not a member; an id a user namespace does not map) takes its read access with it: it
used to pass to the runner's own group. An fchown refused with EINVAL (a user namespace) is
a refusal like EPERM: the ring is written, ours; it used to fail the whole rewrite.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli.keys_rotate_helpers import versions
from tzurot.cli.keys import add_master_key_version
from tzurot.runtime.errors import StartupError

KEY = "1:" + "A" * 43 + "=\n"


def spelled(tmp_path: Path, how: str) -> tuple[Path, Path]:
    """The key file `secrets/tzurot.key` and the path it is reached by."""
    target = tmp_path / "secrets" / "tzurot.key"
    target.parent.mkdir()
    target.write_text(KEY)
    if how == "plain":
        return target, target
    if how == "file-link":
        path = tmp_path / "master.key"
        path.symlink_to(Path("secrets") / "tzurot.key")
        return path, target
    (tmp_path / "dotfiles").symlink_to("secrets")
    return tmp_path / "dotfiles" / "tzurot.key", target


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


SPELLINGS = ["plain", "file-link", "folder-link"]

MODES = [
    (0o600, 0o600),
    (0o400, 0o600),  # its owner's to rewrite
    (0o640, 0o640),  # shared with its group on purpose: kept
    (0o660, 0o640),  # its group may read it, never write
    (0o644, 0o600),  # others could read it: a umask's doing, not a share
    (0o666, 0o600),  # anyone could append a version whose key they know
    (0o604, 0o600),
]


@pytest.mark.parametrize("how", SPELLINGS)
@pytest.mark.parametrize(("was", "now"), MODES, ids=[f"{w:04o}" for w, _ in MODES])
def test_the_mode_comes_from_the_file_however_the_path_is_spelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, was: int, now: int
) -> None:
    path, target = spelled(tmp_path, how)
    target.chmod(was)

    assert add_master_key_version(path) == 2

    assert mode(target) == now
    assert versions(target) == ["1", "2"]
    told = capsys.readouterr()
    assert told.out == ""
    if was & ~now & 0o077:
        assert told.err == (
            f"tzurot: master key file {path} had mode {was:04o}; the new ring has {now:04o} "
            "(a master key is its owner's; its group may read it only when others may not)\n"
        )
    else:
        assert told.err == ""


def another_group(path: Path) -> int:
    """`path` given a group other than ours: a key shared with a group. Its gid."""
    if os.geteuid() == 0:
        os.chown(path, -1, 65534)  # root's key, another group's to read
        return 65534
    others = [gid for gid in os.getgroups() if gid != os.getegid()]
    if not others:
        pytest.skip("no group of ours other than the primary one to give the key file")
    os.chown(path, -1, others[0])
    return others[0]


def refuse_fchown(monkeypatch: Any, error: int, *, also_group_alone: bool) -> list[tuple[int, int]]:
    """os.fchown refused with `error` (an owner given; the group alone too, when
    `also_group_alone`), as for a runner that is not root; the calls made."""
    calls: list[tuple[int, int]] = []
    real = os.fchown

    def fchown(fd: int, uid: int, gid: int) -> None:
        calls.append((uid, gid))
        if uid != -1 or also_group_alone:
            raise OSError(error, os.strerror(error))
        real(fd, uid, gid)

    monkeypatch.setattr(os, "fchown", fchown)
    return calls


def test_the_group_alone_is_given_and_its_share_kept(
    tmp_path: Path, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new ring is ours (root writes only a key of root's): only its group is given."""
    path, target = spelled(tmp_path, "file-link")
    target.chmod(0o640)
    gid = another_group(target)
    calls = refuse_fchown(monkeypatch, errno.EPERM, also_group_alone=False)

    assert add_master_key_version(path) == 2

    info = target.stat()
    assert calls == [(-1, gid)]  # no owner asked for
    assert (info.st_uid, info.st_gid) == (os.geteuid(), gid)  # ours, in its group
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("error", [errno.EPERM, errno.EINVAL])
def test_a_group_that_cannot_be_kept_is_given_no_read_access(
    tmp_path: Path, monkeypatch: Any, capsys: pytest.CaptureFixture[str], error: int
) -> None:
    """EINVAL: a user namespace (a rootless container) with the file's ids unmapped."""
    path, target = spelled(tmp_path, "plain")
    target.chmod(0o640)
    gid = another_group(target)
    refuse_fchown(monkeypatch, error, also_group_alone=True)

    assert add_master_key_version(path) == 2

    info = target.stat()
    assert (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid())  # ours
    assert stat.S_IMODE(info.st_mode) == 0o600  # not readable by our own group instead
    assert versions(target) == ["1", "2"]
    assert capsys.readouterr().err == (
        f"tzurot: master key file {path} had mode 0640; the new ring has 0600: its group "
        f"(gid {gid}) could not be kept (only root or a member may give it), so no group may "
        "read it\n"
    )
    assert sorted(p.name for p in target.parent.iterdir()) == ["tzurot.key"]


def test_another_fchown_failure_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: Any) -> None:
    path, target = spelled(tmp_path, "plain")
    another_group(target)
    before = target.read_bytes()
    refuse_fchown(monkeypatch, errno.EIO, also_group_alone=True)

    with pytest.raises(StartupError, match=f"^cannot write master key file {path}: Input/output"):
        add_master_key_version(path)

    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["tzurot.key"]
