"""The master key file as `tzurot keys` reads and rewrites it (a ring of `<version>:<key>`).

Read without waiting (tzurot.runtime.regular_file, as keyvault reads it): anything but a
regular file (a FIFO, a socket, a device, a folder) is refused in one line before it is
opened, and again after, from the open descriptor (a path swapped in between), which is
opened non-blocking so a FIFO cannot make the command hang.

Rewritten atomically: a temporary file beside it, renamed over it, the folder synced so the
new version outlives a crash (keyvault may seal keys with it at once). A key path with
symlinks (a dotfile set-up) is written through: the temporary file goes beside the file it
resolves to and is renamed over that file, so the links stay and read the new ring. A file
with other hard links is refused: the rename would leave them the old ring.

Run as root, only a key file of root's whose path only root may change is rewritten
(tzurot.cli.keys_as_root: a user's key is refused, naming whom to run it as). The new file
is ours (root's key stays root's) and keeps its group where we may give it (root, or a
member of it), as an editor leaves it. Its mode comes from the file, however the path is
spelled: 0600, or 0640 when the file was readable by its group and not by others (a share
on purpose, such as tzurot.cli.private_files leaves a linked key) and that group was kept;
never others'. A bit of the group's or others' taken away is said in one line on standard
error.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import re
import secrets
import stat
import sys
from pathlib import Path

from tzurot.cli.keys_as_root import check_root_may_write
from tzurot.runtime.errors import StartupError
from tzurot.runtime.regular_file import dangling_symlink, not_a_regular_file, read_regular_file

_VERSIONED = re.compile(r"\s*([1-9][0-9]{0,8})\s*:")

_WHAT = "master key file"

_OWNER = 0o600
_GROUP_READ = 0o040

# fchown refused: EPERM (not root, not a member of the group); EINVAL (an id not mapped in
# this user namespace, e.g. the overflow gid 65534 of a rootless container).
_CHOWN_REFUSED = frozenset({errno.EPERM, errno.EINVAL})

# A file system that cannot sync a folder (the rename is then as durable as it makes it).
_NO_FOLDER_SYNC = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF})


class NotDurable(StartupError):
    """The version is in the key file, but its folder's sync failed: it may not survive a
    crash."""


def new_key_line(version: int) -> str:
    """A fresh 32-byte key as a `<version>:<base64>` line."""
    return f"{version}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def not_a_key_file(path: Path, mode: int) -> StartupError:
    """The one line for a key path that holds something other than a regular file."""
    return not_a_regular_file(_WHAT, path, mode)


def newest_master_key_version(path: Path) -> int:
    """The newest version in the key file (1 for a single unversioned key)."""
    return max(_versioned_lines(path, _read(path, path, follow=True)[0])[1])


def add_master_key_version(path: Path, *, locked: Path | None = None) -> int:
    """Appends a new, higher version to the key file (written through symlinks) and returns
    it. A file holding one unversioned key becomes `1:<key>` first. `locked`: the file
    `tzurot.cli.keys.rotation_lock` resolved `path` to and locked; a path re-linked since is
    refused (another lock would guard the file it names now).

    Raises StartupError (one line) when the path holds no regular file, has other hard links,
    or the file cannot be rewritten (a folder we may not write, a read-only mount, a full
    disk; as root, a file or path another user may change): it is left as it was, and no
    temporary file; NotDurable when the rename cannot be made durable (the folder's sync
    failed: the version is in the file, the line says so)."""
    try:
        check_root_may_write(path)
    except OSError as exc:  # as root: nothing there to write
        raise _unreadable(path, exc) from None
    target = Path(os.path.realpath(path))
    if locked is not None and target != locked:
        raise StartupError(
            f"master key file {path} now resolves to {target}, not to {locked} as when it "
            "was locked; no version was added: run this again"
        )
    # The resolved file, read without following a link put there since: what is read is
    # what the rename replaces.
    text, info = _read(path, target, follow=False)
    if info.st_nlink > 1:
        raise StartupError(
            f"master key file {path} has {info.st_nlink} hard links: the rewrite would leave "
            "the others the old ring; make them symlinks to it; no version was added"
        )
    lines, versions = _versioned_lines(path, text)
    version = max(versions) + 1
    lines = [line for line in lines if line] + [new_key_line(version)]
    through = f" (a symlink to {target})" if path.is_symlink() else ""
    try:
        mode, group_kept = _replaced(target, "\n".join(lines) + "\n", info)
    except OSError as exc:
        raise StartupError(
            f"cannot write master key file {path}{through}: {exc.strerror}"
        ) from None
    if info.st_mode & ~mode & 0o077:  # a bit of its group's or others' taken away
        print(f"tzurot: {_mode_notice(path, info, mode, group_kept)}", file=sys.stderr)
    try:
        _synced_folder(target.parent)
    except OSError as exc:
        raise NotDurable(
            f"master key version {version} was added to {path} but may not survive a crash: "
            f"cannot sync its folder {target.parent}: {exc.strerror}"
        ) from None
    return version


def _mode_notice(path: Path, was: os.stat_result, mode: int, group_kept: bool) -> str:
    """The line telling what the rewrite took away from the key file's mode."""
    told = f"master key file {path} had mode {stat.S_IMODE(was.st_mode):04o}; the new ring has"
    if _group_share(was) and not group_kept:
        return (
            f"{told} {mode:04o}: its group (gid {was.st_gid}) could not be kept (only root or "
            "a member may give it), so no group may read it"
        )
    return (
        f"{told} {mode:04o} (a master key is its owner's; its group may read it only when "
        "others may not)"
    )


def _read(path: Path, file: Path, *, follow: bool) -> tuple[str, os.stat_result]:
    """The text of `file` (`path` resolved, or `path` itself) and its stat; never waits."""
    try:
        data, info = read_regular_file(_WHAT, path, file=file, follow=follow)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    try:
        return data.decode("utf-8"), info
    except UnicodeDecodeError:
        raise StartupError(f"master key file {path} is not UTF-8 text") from None


def _unreadable(path: Path, exc: OSError) -> StartupError:
    if isinstance(exc, FileNotFoundError) and os.path.islink(path) and not os.path.exists(path):
        return dangling_symlink(_WHAT, path)
    return StartupError(f"cannot read master key file {path}: {exc.strerror}")


def _versioned_lines(path: Path, text: str) -> tuple[list[str], list[int]]:
    """The key file's lines (an unversioned single key as `1:<key>`) and its versions."""
    lines = [line.strip() for line in text.splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if not keys:
        raise StartupError(f"master key file {path} holds no key")
    if len(keys) == 1 and ":" not in keys[0]:
        return [f"1:{line}" if line == keys[0] else line for line in lines], [1]
    versions = []
    for line in keys:
        found = _VERSIONED.match(line)
        if found is None:
            raise StartupError(f"master key file {path}: a line is not <version>:<key>")
        versions.append(int(found.group(1)))
    return lines, versions


def _replaced(path: Path, text: str, was: os.stat_result) -> tuple[int, bool]:
    """`path` (no symlink) rewritten to hold `text`, through a temporary file renamed over
    it, ours, with `was`'s group where we may. Returns the mode it was given (0600, or
    0640 when `was` was shared with its group alone and the group was kept) and whether the
    group was."""
    temporary = path.with_name(path.name + ".tmp")
    # Made anew (a leftover, or a symlink there, is removed first) and private whatever the
    # umask until it is whole: it becomes the key file.
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _OWNER)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), _OWNER)
            handle.write(text)
            handle.flush()
            group_kept = _grouped_as(handle.fileno(), was)
            mode = _OWNER | (_GROUP_READ if group_kept and _group_share(was) else 0)
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return mode, group_kept


def _group_share(was: os.stat_result) -> bool:
    """Whether `was` was shared with its group on purpose: its group may read it and others
    may not (0644 is a umask's doing, 0640 a choice)."""
    return bool(was.st_mode & _GROUP_READ) and not was.st_mode & 0o007


def _grouped_as(fd: int, was: os.stat_result) -> bool:
    """The file `fd` given `was`'s group where we may (root may; anyone may give a file a
    group they are in); else left in ours, as an editor leaves it. Returns whether it has
    `was`'s group. Its owner stays ours: root rewrites only a key file of root's."""
    if os.fstat(fd).st_gid == was.st_gid:
        return True
    try:
        os.fchown(fd, -1, was.st_gid)
    except OSError as exc:
        if exc.errno not in _CHOWN_REFUSED:
            raise
        return False
    return True


def _synced_folder(folder: Path) -> None:
    """The rename made durable. A file system that cannot sync a folder is left to itself;
    any other failure (EIO) is raised."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_FOLDER_SYNC:
            raise
    finally:
        os.close(fd)
