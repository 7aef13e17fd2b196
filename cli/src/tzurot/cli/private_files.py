"""Private key files readable by their owner only, also when they were made before.

`tzurot certs` (and `tzurot up`) keep a CA and certificates that are still valid: a private
key file whose mode was opened since (a copy, `chmod 644`, an archive unpacked with another
umask) would be kept as open as it is. The files are made 0600 (tzurot.runtime.pki); here
one found more open is tightened back to 0600, and the caller says so.

A symlink is not followed: the file it points to may be shared on purpose (a key readable by
the ssl-cert group, a Kubernetes secret volume), so its mode is told, not changed. A file whose
mode cannot be changed (another owner's, a read-only mount) is told too, and the command goes
on as it did before the check.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
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
    changed (no permission, a read-only file system, not a regular file). A missing one is
    skipped.

    The path is looked up once, without following a symlink, into a descriptor (O_PATH: the
    file itself is not opened, so a key we may not read, a socket or a device node is no
    different); fstat and the change then go through that descriptor (chmod of
    /proc/self/fd/N, as glibc's lchmod does: fchmod refuses an O_PATH descriptor). A path
    swapped for a symlink after the look cannot lead the change elsewhere (Linux has no
    lchmod)."""
    found: list[Notice] = []
    for path in paths:
        try:
            fd = os.open(path, _LOOKUP_FLAGS)
        except FileNotFoundError:
            continue
        except PermissionError as exc:
            notice = _unopened(path, exc)
        else:
            try:
                notice = _tightened(path, fd)
            finally:
                os.close(fd)
        if notice is not None:
            found.append(notice)
    return found


# A lookup, not an open: no read permission needed, nothing opened (a device, a FIFO), and
# a symlink is the link itself, not what it points to.
_LOOKUP_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def _tightened(path: Path, fd: int) -> Notice | None:
    """Tightens the file `fd` (at `path`) when it is a regular file more open than 0600."""
    info = os.fstat(fd)
    if stat.S_ISLNK(info.st_mode):
        return _symlink_left(path)
    was = stat.S_IMODE(info.st_mode)
    if not was & ~PRIVATE_MODE:
        return None
    if not stat.S_ISREG(info.st_mode):
        return NotTightened(path, was, "not a regular file")
    try:
        os.chmod(f"/proc/self/fd/{fd}", PRIVATE_MODE)  # the file looked up, wherever it is now
    except OSError as exc:
        if not isinstance(exc, PermissionError) and exc.errno != errno.EROFS:
            raise
        return NotTightened(path, was, exc.strerror or str(exc))
    return Tightened(path, was)


def _symlink_left(path: Path) -> Notice | None:
    """A symlink to a key more open than 0600: told, not followed."""
    try:
        was = stat.S_IMODE(path.stat().st_mode)  # only looked at, never changed
    except OSError:  # a dangling link: no key there to protect
        return None
    return SymlinkLeft(path, was, Path(os.path.realpath(path))) if was & ~PRIVATE_MODE else None


def _unopened(path: Path, exc: PermissionError) -> Notice | None:
    """What to tell of a key file that could not be looked up (a security module's refusal):
    its mode, when more open than 0600, not changed. A folder on the way that may not be
    searched raises (its lstat fails as well)."""
    try:
        was = stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return None
    return NotTightened(path, was, exc.strerror or str(exc)) if was & ~PRIVATE_MODE else None
