"""The master key file as `tzurot keys` reads and rewrites it (a ring of `<version>:<key>`).

Read without waiting (tzurot.runtime.regular_file, as keyvault reads it): anything but a
regular file (a FIFO, a socket, a device, a folder) is refused in one line before it is
opened, and again after, from the open descriptor (a path swapped in between), which is
opened non-blocking so a FIFO cannot make the command hang.

Rewritten atomically: a temporary file beside it, renamed over it, the folder synced so the
new version outlives a crash (keyvault may seal keys with it at once). A key file that is a
symlink (a dotfile set-up, a Kubernetes mount) is written through: the temporary file goes
beside the file it points to and is renamed over that file, so the link stays and reads the
new ring. The rewritten file keeps its owner and group where we may give them (root
rewriting a user's key file); it is 0600, except a file reached through a symlink, which
keeps its mode (it may be shared on purpose, as tzurot.cli.private_files leaves it).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
from pathlib import Path

from tzurot.runtime.errors import StartupError
from tzurot.runtime.regular_file import not_a_regular_file, read_regular_file

_VERSIONED = re.compile(r"\s*([1-9][0-9]{0,8})\s*:")

_WHAT = "master key file"


def new_key_line(version: int) -> str:
    """A fresh 32-byte key as a `<version>:<base64>` line."""
    return f"{version}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def not_a_key_file(path: Path, mode: int) -> StartupError:
    """The one line for a key path that holds something other than a regular file."""
    return not_a_regular_file(_WHAT, path, mode)


def newest_master_key_version(path: Path) -> int:
    """The newest version in the key file (1 for a single unversioned key)."""
    return max(_versioned_lines(path, _read(path, path, follow=True)[0])[1])


def add_master_key_version(path: Path) -> int:
    """Appends a new, higher version to the key file (written through a symlink) and returns
    it. A file holding one unversioned key becomes `1:<key>` first.

    Raises StartupError (one line) when the path holds no regular file, or the file cannot
    be rewritten (a folder we may not write, a read-only mount, a full disk): it is left as
    it was, and no temporary file."""
    linked = path.is_symlink()
    target = Path(os.path.realpath(path))
    # The resolved file, read without following a link put there since: what is read is
    # what the rename replaces.
    text, info = _read(path, target, follow=False)
    lines, versions = _versioned_lines(path, text)
    version = max(versions) + 1
    lines = [line for line in lines if line] + [new_key_line(version)]
    mode = info.st_mode & 0o777 if linked else 0o600
    try:
        _replaced(target, "\n".join(lines) + "\n", mode, info)
    except OSError as exc:
        through = f" (a symlink to {target})" if linked else ""
        raise StartupError(
            f"cannot write master key file {path}{through}: {exc.strerror}"
        ) from None
    return version


def _read(path: Path, file: Path, *, follow: bool) -> tuple[str, os.stat_result]:
    """The text of `file` (`path` resolved, or `path` itself) and its stat; never waits."""
    try:
        data, info = read_regular_file(_WHAT, path, file=file, follow=follow)
    except OSError as exc:
        raise StartupError(f"cannot read master key file {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8"), info
    except UnicodeDecodeError:
        raise StartupError(f"master key file {path} is not UTF-8 text") from None


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


def _replaced(path: Path, text: str, mode: int, was: os.stat_result) -> None:
    """`path` (no symlink) rewritten to hold `text` with `mode` and, where we may, `was`'s
    owner and group, through a temporary file renamed over it; then its folder synced."""
    temporary = path.with_name(path.name + ".tmp")
    # Made anew (a leftover, or a symlink there, is removed first) and private whatever the
    # umask until it is whole: it becomes the key file.
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            _owned_as(handle.fileno(), was)
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _synced_folder(path.parent)


def _owned_as(fd: int, was: os.stat_result) -> None:
    """The file `fd` given `was`'s owner and group, or its group alone, where we may (root
    may; anyone may give a file a group they are in); else left ours, as an editor does."""
    now = os.fstat(fd)
    if (now.st_uid, now.st_gid) == (was.st_uid, was.st_gid):
        return
    for uid in (was.st_uid, -1):
        with contextlib.suppress(PermissionError):
            os.fchown(fd, uid, was.st_gid)
            return


def _synced_folder(folder: Path) -> None:
    """The rename made durable; a file system that cannot sync a folder is left to itself."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
