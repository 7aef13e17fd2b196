"""`tzurot keys`: add a master key version and re-wrap every stored key under it.

The operator flow (see docs/KEYVAULT.md): append `<version>:<key>` to the master key file
(the Kubernetes Secret), let keyvault see it (it re-reads the file when a rewrap starts),
then run RewrapKeys as identity `cli`. Locally (`.data/master.key`) `tzurot keys rotate`
does all of it: it asks keyvault where the rotation stands first (GetRewrapProgress), and
adds the version only once keyvault answered, so an unreachable keyvault (or a certificate it
refuses) leaves the file as it was. The version is not taken back when the rewrap then fails:
keyvault reads the file as the rewrap starts and seals new keys with its newest version at
once, and it refuses a file that drops a version it knows (docs/KEYVAULT.md). The rotation is
finished by `tzurot keys rotate --no-add-version`.

One rotation at a time: `rotation_lock` holds an exclusive flock on `master.key.lock` beside
the key file (in its folder's resolved path: two paths to one folder share it) for a whole
`keys rotate` (and `keys add-version`), so two runs cannot both add a version (each
rewriting the file from what it read, through the same temporary file) nor rewrap while the
other adds. `--no-add-version` writes nothing there: it goes on without the lock, warned,
when it may not make or open one (a read-only folder, another user's folder or lock: the
lock is made 0600, so another user's cannot be opened at all). A lock file we may only read
(on a mount made read-only since, or made readable to others by hand) still serves.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from tzurot.runtime.client import secure_channel
from tzurot.runtime.errors import StartupError
from tzurot.runtime.tls import load_tls
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc

_VERSIONED = re.compile(r"\s*([1-9][0-9]{0,8})\s*:")


def new_key_line(version: int) -> str:
    """A fresh 32-byte key as a `<version>:<base64>` line."""
    return f"{version}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def _versioned_lines(path: Path) -> tuple[list[str], list[int]]:
    """The key file's lines (an unversioned single key as `1:<key>`) and its versions."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StartupError(f"cannot read master key file {path}: {exc.strerror}") from None
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


def newest_master_key_version(path: Path) -> int:
    """The newest version in the key file (1 for a single unversioned key)."""
    return max(_versioned_lines(path)[1])


def add_master_key_version(path: Path) -> int:
    """Appends a new, higher version to the key file (rewritten atomically, mode 0600).

    A file holding one unversioned key becomes `1:<key>` first. Returns the new version.
    Raises StartupError (one line) when the file cannot be rewritten (a folder we may not
    write, a read-only mount, a full disk): it is left as it was, and no temporary file.
    """
    lines, versions = _versioned_lines(path)
    version = max(versions) + 1
    lines = [line for line in lines if line] + [new_key_line(version)]
    try:
        _replaced(path, "\n".join(lines) + "\n")
    except OSError as exc:
        raise StartupError(f"cannot write master key file {path}: {exc.strerror}") from None
    return version


def _replaced(path: Path, text: str) -> None:
    """`path` rewritten to hold `text`, through a temporary file renamed over it."""
    temporary = path.with_name(path.name + ".tmp")
    # Made anew (a leftover, or a symlink there, is removed first) and 0600 whatever the
    # umask: it becomes the key file.
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


class RotationRunning(StartupError):
    """Another `tzurot keys rotate` (or `keys add-version`) holds the key file's lock."""


def lock_file_of(key_file: Path) -> Path:
    """`<key file>.lock` in the key file's folder, that folder's symlinks resolved."""
    return Path(os.path.realpath(key_file.parent)) / f"{key_file.name}.lock"


# Made 0600 when missing, never through a symlink; a FIFO's open does not wait for a writer,
# a terminal does not become ours.
_LOCK_FLAGS = os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


@contextlib.contextmanager
def rotation_lock(key_file: Path, *, writes: bool = True) -> Iterator[str | None]:
    """Holds the key file's rotation lock (an exclusive flock on `lock_file_of(key_file)`,
    left in place) until the block ends; raises RotationRunning at once, without waiting,
    when another process holds it, and StartupError (one line) when the lock cannot be used.

    Yields None, or, when the block `writes` nothing to the key file (`--no-add-version`) and
    the lock may not be made or opened (a read-only folder, another user's folder or 0600
    lock file), why it goes on unlocked.
    A key file that does not exist (nor its folder: a keyvault elsewhere) has nothing to
    guard: no lock is made, and the command says what it says of a missing key file."""
    lock = lock_file_of(key_file)
    if not os.path.isfile(key_file):
        yield None
        return
    try:
        fd = _opened(lock)
    except OSError as exc:
        if writes or exc.errno not in _NOT_WRITABLE:
            why = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror
            raise StartupError(f"cannot open the rotation lock {lock}: {why}") from None
        unlocked = f"cannot open {lock}: {exc.strerror}"
    else:
        with _held(fd, key_file, lock):
            yield None
        return
    yield unlocked


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
