"""Which master key file `tzurot keys` may change when it runs as root.

Root that writes where another user may change the path can be led to write elsewhere: the
user swaps a folder of theirs for a symlink to a root-only one between two steps of root's
path walk, and finds root's lock or new ring there (a file they could get as theirs). So,
as OpenSSH's StrictModes does, root adds a version to a key file, or takes its lock, only
when the file is root's and every folder its path is looked up in, from /, through every
symlink, may be changed by root alone: root's, and writable by neither its group nor
others. A sticky folder of root's above the key's own (/tmp, /dev/shm: `mktemp -d`) passes
for an entry of root's in it, which no one else may rename or remove; the key's own folder
(where the lock and the temporary file are made) may not be one. Anything else is refused in
one line that names whom to run it as. A run as anyone else is not looked at: it may write
only where its user may.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from pathlib import Path

from tzurot.runtime.errors import StartupError

_MAX_LINKS = 40  # as the kernel's path walk
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH

_ONLY_ROOTS = "and root changes only a key file of root's in folders only root may change"


def check_root_may_write(path: Path) -> None:
    """Returns when not root, or when root may change the key file `path` names. Raises
    StartupError (one line) when another user may change it or its path, and the OSError
    when the path leads to nothing (missing, a symlink loop): the caller says it, as it
    says a missing key file."""
    if os.geteuid() != 0:
        return
    folder, name, info = _walked(path)
    if name is None:  # a folder (a path ending in `..`): the caller refuses it as such
        return
    if not _root_only(os.lstat(folder)):
        raise _refused(path, _is(folder, os.lstat(folder)), info)
    if info.st_uid != 0:
        user = _user(info.st_uid)
        raise StartupError(f"master key file {path} is {user}'s, {_ONLY_ROOTS}: run it as {user}")


def _walked(path: Path) -> tuple[Path, str | None, os.stat_result]:
    """The folder `path` resolves in, the name there (None for a path ending in `..`) and
    its lstat; each folder a name is looked up in is checked first, as the kernel walks it
    (symlinks followed, `..` taken after the link before it)."""
    folder = Path("/")
    pending = list(reversed(Path(os.getcwd(), path).parts[1:]))
    name: str | None = None
    info = os.lstat(folder)
    links = 0
    while pending:
        step = pending.pop()
        if name is not None:  # the last name looked up is a folder on the way
            folder, name = folder / name, None
        if step == "..":
            folder = folder.parent
            info = os.lstat(folder)
            continue
        info = os.lstat(folder / step)
        _check_lookup(path, folder, info)
        if not stat.S_ISLNK(info.st_mode):
            name = step
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
        target = Path(os.readlink(folder / step))
        if target.is_absolute():
            folder, target = Path("/"), target.relative_to("/")
        pending.extend(reversed(target.parts))
    return folder, name, info


def _check_lookup(path: Path, folder: Path, entry: os.stat_result) -> None:
    """Refuses a look-up in `folder` that anyone but root may change: a folder root's and
    not writable by others, or sticky and root's with `entry` (what was found) root's."""
    found = os.lstat(folder)
    if _root_only(found):
        return
    if found.st_uid == 0 and found.st_mode & stat.S_ISVTX and entry.st_uid == 0:
        return
    raise _refused(path, _is(folder, found), None)


def _root_only(info: os.stat_result) -> bool:
    return info.st_uid == 0 and not info.st_mode & _OTHERS_WRITE


def _is(folder: Path, info: os.stat_result) -> str:
    if info.st_uid != 0:
        return f"{folder} is {_user(info.st_uid)}'s"
    return f"{folder} may be written by others than root (mode {stat.S_IMODE(info.st_mode):04o})"


def _refused(path: Path, why: str, key: os.stat_result | None) -> StartupError:
    """The line for a key file whose path another user may change: run it as the key file's
    owner (when we can tell, and it is not root), else keep the key elsewhere."""
    if key is None:
        try:
            key = os.stat(path)
        except OSError:
            key = None
    if key is not None and key.st_uid != 0:
        advice = f"run it as {_user(key.st_uid)}"
    else:
        advice = "move it to a folder only root may change"
    return StartupError(f"master key file {path}: {why}, {_ONLY_ROOTS}: {advice}")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
