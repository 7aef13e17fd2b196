"""A small file (a key, a certificate) read without ever waiting: only a regular file is opened.

A FIFO at the path would make a plain read wait for a writer forever (a service hung at
start, a command that never returns), a device's open may act, a socket's fails with an odd
reason. So the path is looked at first, and anything but a regular file (through symlinks: a
Kubernetes Secret is a file reached through `..data` links) is refused in one line before it
is opened; the open is non-blocking and the open descriptor is looked at again (a path
swapped in between). A symlink to nothing is said to be one (usually a missing mount).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tzurot.runtime.errors import StartupError

# Read-only; a FIFO's open does not wait for a writer, a terminal does not become ours.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFLNK: "a symlink loop",  # what a path resolves to when its links go round
}


def not_a_regular_file(what: str, path: Path, mode: int) -> StartupError:
    """The one line for `what` (`master key file`) at `path` holding something else."""
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return StartupError(f"{what} {path} is {kind}, not a regular file")


def dangling_symlink(what: str, path: Path) -> StartupError:
    """The one line for `what` at `path` being a symlink to a file that is not there."""
    try:
        target = f" ({os.readlink(path)})"
    except OSError:  # gone since
        target = ""
    return StartupError(f"{what} {path} is a symlink to a missing file{target}")


def read_regular_file(
    what: str, path: Path, *, file: Path | None = None, follow: bool = True
) -> tuple[bytes, os.stat_result]:
    """The bytes of `file` (default `path`, which the errors name) and its stat; never waits.

    `follow=False`: `file` itself must be the regular file (no symlink followed). Raises
    StartupError (one line, naming `what` and `path`) when it is no regular file or a
    symlink to nothing, and the OSError otherwise (missing, not permitted), for the caller
    to word."""
    file = path if file is None else file
    try:
        found = os.stat(file, follow_symlinks=follow)
    except FileNotFoundError:
        if os.path.islink(path) and not os.path.exists(path):
            raise dangling_symlink(what, path) from None
        raise
    if not stat.S_ISREG(found.st_mode):  # not even opened: a device's open may act
        raise not_a_regular_file(what, path, found.st_mode)
    fd = os.open(file, _READ_FLAGS | (0 if follow else os.O_NOFOLLOW))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped since the look
            raise not_a_regular_file(what, path, info.st_mode)
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
    finally:
        os.close(fd)
    return data, info
