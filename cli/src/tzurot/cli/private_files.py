"""Private key files readable by their owner only, also when they were made before.

`tzurot certs` (and `tzurot up`) keep a CA and certificates that are still valid: a private
key file whose mode was opened since (a copy, `chmod 644`, an archive unpacked with another
umask) would be kept as open as it is. The files are made 0600 (tzurot.runtime.pki); here
one found more open is tightened back to 0600, and the caller says so.

A symlink is not followed: the file it points to may be shared on purpose (a key readable by
the ssl-cert group, a Kubernetes secret volume), so its mode is told, not changed. A file whose
mode cannot be changed (another owner's, a read-only mount, a Linux without /proc) is told
too, and the command goes on as it did before the check.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PRIVATE_MODE = 0o600


@dataclass(frozen=True)
class Notice:
    """What `tighten` found, and did, about one key file more open than 0600."""

    path: Path
    was: int
    """Its permission bits before."""

    def notice(self) -> str:
        """The line that tells the user (without the `tzurot: ` prefix)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Tightened(Notice):
    """A key file made 0600."""

    def notice(self) -> str:
        return (
            f"private key {self.path} had mode {self.was:04o}; "
            f"made it {PRIVATE_MODE:04o} (its owner only)"
        )


@dataclass(frozen=True)
class SymlinkLeft(Notice):
    """A symlink to a key more open than 0600: the file it points to is left as it is."""

    target: Path

    def notice(self) -> str:
        return (
            f"private key {self.path} is a symlink to {self.target} with mode "
            f"{self.was:04o}; not changed (a symlink is not followed)"
        )


@dataclass(frozen=True)
class NotTightened(Notice):
    """A key more open than 0600 whose mode could not be changed."""

    why: str

    def notice(self) -> str:
        return (
            f"could not make private key {self.path} {PRIVATE_MODE:04o} (it has mode "
            f"{self.was:04o}): {self.why}"
        )


def private_key_files(certs_dir: Path, identities: Sequence[str]) -> list[Path]:
    """The private keys of a development PKI in `certs_dir`: the CA's and each identity's."""
    return [certs_dir / "ca" / "ca.key", *(certs_dir / name / "tls.key" for name in identities)]


def tighten(paths: Iterable[Path]) -> list[Notice]:
    """Makes each existing file of `paths` whose mode has a bit beyond 0600 (the group's,
    others', execute) mode 0600; returns what there is to tell: each file changed, each
    symlink to such a file (not followed, not changed) and each file whose mode could not be
    changed (no permission, a read-only file system, not a regular file, no /proc). A missing
    one is skipped.

    The file is changed through a descriptor, never by path: a path swapped for a symlink
    after the look cannot lead the change elsewhere (Linux has no lchmod). On Linux the path
    is looked up without being opened (O_PATH): a key we may not read, a socket or a device
    node is no different. Elsewhere it is opened read-only, as before (a key its owner may
    not read is then told, not changed)."""
    found = [_tighten_one(path) for path in paths]
    return [notice for notice in found if notice is not None]


NO_PROC = "no /proc to change it without following symlinks"
"""Why a key is not changed on a Linux without /proc mounted (a chroot, a build sandbox)."""

_O_PATH: int | None = getattr(os, "O_PATH", None)  # Linux only

# A lookup, not an open: no read permission needed, nothing opened (a device, a FIFO), and
# a symlink is the link itself, not what it points to.
_LOOKUP_FLAGS = (_O_PATH or 0) | os.O_NOFOLLOW | os.O_CLOEXEC

# Without O_PATH: read-only (no write, no truncation); a FIFO's open does not wait for a
# writer, a terminal does not become ours; and a symlink fails with ELOOP, not followed.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _looked_up_and_tightened(path: Path) -> Notice | None:
    """Linux: the path looked up once into an O_PATH descriptor; fstat and the change go
    through it (chmod of /proc/self/fd/N, as glibc's lchmod does: fchmod refuses an O_PATH
    descriptor)."""
    try:
        fd = os.open(path, _LOOKUP_FLAGS)
    except FileNotFoundError:
        return None
    except PermissionError as exc:  # a security module's refusal
        return _unopened(path, exc)
    try:
        return _tightened(path, fd, _chmod_through_proc)
    finally:
        os.close(fd)


def _opened_and_tightened(path: Path) -> Notice | None:
    """Without O_PATH: a symlink, a socket or a device node (lstat) is told without being
    opened; a regular file is opened read-only without following a symlink, and fstat and
    the change (fchmod) go through that descriptor."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return _unopened(path, None)
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:  # not readable, or swapped since the lstat (ELOOP, ENXIO...)
        return _unopened(path, exc)
    try:
        return _tightened(path, fd, _fchmod)
    finally:
        os.close(fd)


def _chmod_through_proc(fd: int) -> str | None:
    """Makes the file looked up into `fd` 0600, wherever it is now; or says why not."""
    try:
        os.chmod(f"/proc/self/fd/{fd}", PRIVATE_MODE)
    except (FileNotFoundError, NotADirectoryError):  # no /proc: a chmod by path could follow
        return NO_PROC  # a symlink put there since the look, so there is none
    return None


def _fchmod(fd: int) -> str | None:
    os.fchmod(fd, PRIVATE_MODE)
    return None


_tighten_one = _looked_up_and_tightened if _O_PATH is not None else _opened_and_tightened


def _tightened(path: Path, fd: int, change: Callable[[int], str | None]) -> Notice | None:
    """Tightens the file `fd` (at `path`) when it is a regular file more open than 0600;
    `change` makes it 0600 or says why it did not."""
    info = os.fstat(fd)
    if stat.S_ISLNK(info.st_mode):  # an O_PATH lookup of a symlink
        return _symlink_left(path)
    was = stat.S_IMODE(info.st_mode)
    if not was & ~PRIVATE_MODE:
        return None
    if not stat.S_ISREG(info.st_mode):
        return NotTightened(path, was, "not a regular file")
    try:
        why = change(fd)
    except OSError as exc:
        if not isinstance(exc, PermissionError) and exc.errno != errno.EROFS:
            raise
        why = exc.strerror or str(exc)
    return Tightened(path, was) if why is None else NotTightened(path, was, why)


def _symlink_left(path: Path) -> Notice | None:
    """A symlink to a key more open than 0600: told, not followed."""
    try:
        was = stat.S_IMODE(path.stat().st_mode)  # only looked at, never changed
    except OSError:  # a dangling link: no key there to protect
        return None
    return SymlinkLeft(path, was, Path(os.path.realpath(path))) if was & ~PRIVATE_MODE else None


def _unopened(path: Path, exc: OSError | None) -> Notice | None:
    """What to tell, from its lstat, of a key file not looked up or opened (`exc`, if it
    failed): a symlink, as such; when more open than 0600, something other than a regular
    file, or a file we may not read (another owner's, a security module's refusal), as not
    changed. Any other error is raised, as is a folder on the way that may not be searched
    (its lstat fails as well)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return _symlink_left(path)
    was = stat.S_IMODE(info.st_mode)
    if not was & ~PRIVATE_MODE:
        return None
    if not stat.S_ISREG(info.st_mode):
        return NotTightened(path, was, "not a regular file")
    if isinstance(exc, PermissionError):
        return NotTightened(path, was, exc.strerror or str(exc))
    if exc is not None:
        raise exc
    return None  # a regular file since the first look: the next run looks again
