"""`tzurot certs`/`up` tighten a loosened private key through a descriptor looked up without
following a symlink (fstat, then chmod of /proc/self/fd/N), never by path: a key file swapped
for a symlink between the look and the change (Linux has no lchmod) cannot lead the change to
the file the link points to. Something other than a regular file is told, not changed, and
looking it up does not hang (a FIFO)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tzurot.cli.private_files import NotTightened, SymlinkLeft, Tightened, tighten


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_key_swapped_for_a_symlink_after_the_look_changes_only_the_key(
    tmp_path: Path, monkeypatch: Any
) -> None:
    key = tmp_path / "tls.key"
    key.write_text("key")
    key.chmod(0o644)
    shared = tmp_path / "shared.key"  # group-readable on purpose
    shared.write_text("shared")
    shared.chmod(0o640)
    moved = tmp_path / "tls.key.old"
    real_lstat, real_fstat = Path.lstat, os.fstat
    swapped: list[bool] = []

    def swap() -> None:
        """Between tighten's look at the key and its change: tls.key becomes a symlink."""
        if not swapped:
            swapped.append(True)
            key.rename(moved)
            key.symlink_to(shared)

    def lstat(self: Path) -> os.stat_result:
        info = real_lstat(self)
        swap()
        return info

    def fstat(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        swap()
        return info

    monkeypatch.setattr(Path, "lstat", lstat)
    monkeypatch.setattr(os, "fstat", fstat)

    found = tighten([key])

    assert swapped
    assert mode(shared) == 0o640  # not reached through the link
    assert mode(moved) == 0o600  # the file that was looked at is the one changed
    assert found == [Tightened(key, 0o644)]


def test_a_symlink_already_there_is_told_not_followed(tmp_path: Path) -> None:
    shared = tmp_path / "shared.key"
    shared.write_text("shared")
    shared.chmod(0o640)
    key = tmp_path / "tls.key"
    key.symlink_to(shared)
    assert tighten([key]) == [SymlinkLeft(key, 0o640, shared)]
    assert mode(shared) == 0o640


def test_a_fifo_is_told_not_changed_and_does_not_hang(tmp_path: Path) -> None:
    key = tmp_path / "tls.key"
    os.mkfifo(key, 0o644)
    os.chmod(key, 0o644)  # whatever the umask
    assert tighten([key]) == [NotTightened(key, 0o644, "not a regular file")]
    assert mode(key) == 0o644


def test_a_key_that_cannot_be_opened_is_told_and_the_others_tightened(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A key we may not even look up (a security module's refusal, simulated): told with
    its mode."""
    theirs, ours = tmp_path / "theirs.key", tmp_path / "ours.key"
    for path in (theirs, ours):
        path.write_text("key")
        path.chmod(0o640)
    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path) == theirs:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    assert tighten([theirs, ours]) == [
        NotTightened(theirs, 0o640, "Permission denied"),
        Tightened(ours, 0o640),
    ]
    assert (mode(theirs), mode(ours)) == (0o640, 0o600)


def test_any_other_error_opening_a_key_is_raised(tmp_path: Path, monkeypatch: Any) -> None:
    key = tmp_path / "tls.key"
    key.write_text("key")

    def open_(*_: Any, **__: Any) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "open", open_)
    with pytest.raises(OSError, match="Input/output error"):
        tighten([key])
