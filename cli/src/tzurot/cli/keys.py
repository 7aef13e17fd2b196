"""`tzurot keys`: add a master key version and re-wrap every stored key under it.

The operator flow (see docs/KEYVAULT.md): append `<version>:<key>` to the master key file
(the Kubernetes Secret), let keyvault see it (it re-reads the file when a rewrap starts),
then run RewrapKeys as identity `cli`. Locally (`.data/master.key`) `tzurot keys rotate`
does all of it: it asks keyvault where the rotation stands first (GetRewrapProgress), and
adds the version only once keyvault answered, so an unreachable keyvault (or a certificate it
refuses) leaves the file as it was. The version is not taken back when the rewrap then fails:
keyvault reads the file as the rewrap starts and seals new keys with its newest version at
once, and it refuses a file that drops a version it knows (docs/KEYVAULT.md). The rotation is
finished by `tzurot keys rotate --no-add-version`. The key file itself is read and rewritten
by tzurot.cli.keys_file.

One writer at a time: `rotation_lock` holds an exclusive flock on `<key file>.lock` beside
the file the key path resolves to (every path to it through symlinks shares it; a file with
other hard links is refused when written) for a whole `keys rotate` that adds a version and
for `keys add-version`, so two runs cannot both add a version (each rewriting the file from
what it read, through the same temporary file) nor add one between another run's check of
keyvault's version and its rewrap. It yields the file it resolved and locked, which is the
file written (a link re-pointed meanwhile is refused, not followed). Run as root, it takes
the lock only of a key file of root's whose path only root may change
(tzurot.cli.keys_as_root): the lock is then root's, in a folder no user may write, and a
user's key is refused, naming whom to run it as.

`--no-add-version` takes no lock: it neither reads nor writes the key file (only the `cli`
certificate), and keyvault's rewraps may run side by side (`FOR UPDATE SKIP LOCKED`), so a
lock there would only guard a local file that has nothing to do with the keyvault asked (a
production one, say). A lock file we may only read (on a mount made read-only since, or made
readable to others by hand) still serves.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from tzurot.cli.keys_as_root import check_root_may_write
from tzurot.cli.keys_file import (
    add_master_key_version,
    newest_master_key_version,
    not_a_key_file,
)
from tzurot.runtime.client import secure_channel
from tzurot.runtime.errors import StartupError
from tzurot.runtime.tls import load_tls
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc

__all__ = [
    "Progress",
    "RotationRunning",
    "add_master_key_version",
    "lock_file_of",
    "newest_master_key_version",
    "rewrap_keys",
    "rewrap_status",
    "rotation_lock",
]


class RotationRunning(StartupError):
    """Another `tzurot keys rotate` (or `keys add-version`) holds the key file's lock."""


def lock_file_of(key_file: Path) -> Path:
    """`<file>.lock` beside the file `key_file` resolves to (its symlinks, and its folder's,
    resolved): the folder `keys add-version` writes in, one lock for every path to it."""
    resolved = Path(os.path.realpath(key_file))
    return resolved.with_name(f"{resolved.name}.lock")


# Made 0600 when missing, never through a symlink; a FIFO's open does not wait for a writer,
# a terminal does not become ours.
_LOCK_FLAGS = os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


@contextlib.contextmanager
def rotation_lock(key_file: Path) -> Iterator[Path | None]:
    """Holds the key file's rotation lock (an exclusive flock on `lock_file_of(key_file)`,
    left in place) while the block adds a version, and yields the file `key_file` resolved to
    (for `add_master_key_version(key_file, locked=...)`); raises RotationRunning at once,
    without waiting, when another process holds it, and StartupError (one line) when the lock
    cannot be used or the key path holds no regular file (a FIFO: refused before anything
    waits).

    A key file that does not exist (nor its folder: a keyvault elsewhere) has nothing to
    guard: no lock is made, None is yielded, and the command says what it says of a missing
    key file. As root, one another user may change (or whose path they may) is refused
    before anything is made (StartupError)."""
    if not _root_may_lock(key_file) or _key_file(key_file) is None:
        yield None
        return
    resolved = Path(os.path.realpath(key_file))
    lock = resolved.with_name(f"{resolved.name}.lock")
    try:
        fd = _opened(lock)
    except OSError as exc:
        why = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror
        raise StartupError(f"cannot open the rotation lock {lock}: {why}") from None
    with _held(fd, key_file, lock):
        yield resolved


def _root_may_lock(key_file: Path) -> bool:
    """Whether there is a key file to lock, as root (tzurot.cli.keys_as_root: raises when
    another user may change it or its path); always, as anyone else."""
    try:
        check_root_may_write(key_file)
    except OSError:  # nothing there: the command says so when it reads it
        return False
    return True


def _key_file(key_file: Path) -> os.stat_result | None:
    """The stat of the regular file there (through symlinks); raises for anything else
    there. None when there is nothing, or it cannot be looked at: reading it says why."""
    try:
        found = os.stat(key_file)
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):
        raise not_a_key_file(key_file, found.st_mode)
    return found


def _opened(lock: Path) -> int:
    """The lock file, read-write when we may, else read-only: flock needs no write access (but
    NFS's does), so a lock file on a mount made read-only since, or one its owner made
    readable to others, still serves. The CLI makes it 0600: another user's lock made by
    the CLI is not opened at all (EACCES)."""
    try:
        return os.open(lock, os.O_RDWR | _LOCK_FLAGS, 0o600)
    except OSError as exc:
        if exc.errno not in _NOT_WRITABLE:
            raise
    return os.open(lock, os.O_RDONLY | _LOCK_FLAGS, 0o600)


@contextlib.contextmanager
def _held(fd: int, key_file: Path, lock: Path) -> Iterator[None]:
    """The flock on the open lock file `fd`, held until the block ends (it goes with the
    descriptor, closed here)."""
    try:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StartupError(f"cannot use the rotation lock {lock}: not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RotationRunning(
                f"another master key rotation is running on {key_file} (it holds {lock}); "
                "wait for it to finish, then run this again"
            ) from None
        except OSError as exc:  # ENOLCK (NFS without its lock service), EIO...
            raise StartupError(f"cannot take the rotation lock {lock}: {exc.strerror}") from None
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Progress:
    version: int
    rewrapped: int
    total: int


async def rewrap_status(
    keyvault_addr: str, tls_dir: Path, *, deadline_seconds: float = 30.0
) -> Progress:
    """Where a rotation stands (GetRewrapProgress, read-only): keyvault's newest version,
    the keys already on it, all keys. Raises the call's error when keyvault cannot be
    reached or refuses the certificate in `tls_dir` (identity `cli`)."""
    channel = secure_channel(
        keyvault_addr,
        load_tls(tls_dir),
        server_identity="keyvault",
        default_timeout=deadline_seconds,
    )
    try:
        stub = kv_grpc.KeyVaultServiceStub(channel)
        reply = await stub.GetRewrapProgress(kv.GetRewrapProgressRequest())
        return Progress(reply.master_key_version, reply.total - reply.stale, reply.total)
    finally:
        await channel.close()


async def rewrap_keys(
    keyvault_addr: str, tls_dir: Path, *, batch_size: int = 0, deadline_seconds: float = 3600.0
) -> AsyncIterator[Progress]:
    """Calls keyvault's RewrapKeys as the certificate in `tls_dir` (identity `cli`)."""
    channel = secure_channel(
        keyvault_addr,
        load_tls(tls_dir),
        server_identity="keyvault",
        default_timeout=deadline_seconds,
    )
    try:
        stub = kv_grpc.KeyVaultServiceStub(channel)
        async for reply in stub.RewrapKeys(kv.RewrapKeysRequest(batch_size=batch_size)):
            yield Progress(reply.master_key_version, reply.rewrapped, reply.total)
    finally:
        await channel.close()
