"""Private key files readable by their owner only, also when they were made before.

`tzurot certs` (and `tzurot up`) keep a CA and certificates that are still valid: a private
key file whose mode was opened since (a copy, `chmod 644`, an archive unpacked with another
umask) would be kept as open as it is. The files are made 0600 (tzurot.runtime.pki); here
one found more open is tightened back to 0600, and the caller says so.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PRIVATE_MODE = 0o600


@dataclass(frozen=True)
class Tightened:
    path: Path
    was: int
    """Its permission bits before."""

    def notice(self) -> str:
        """The line that tells the user (without the `tzurot: ` prefix)."""
        return (
            f"private key {self.path} had mode {self.was:04o}; "
            f"made it {PRIVATE_MODE:04o} (its owner only)"
        )


def private_key_files(certs_dir: Path, identities: Sequence[str]) -> list[Path]:
    """The private keys of a development PKI in `certs_dir`: the CA's and each identity's."""
    return [certs_dir / "ca" / "ca.key", *(certs_dir / name / "tls.key" for name in identities)]


def tighten(paths: Iterable[Path]) -> list[Tightened]:
    """Makes each existing file of `paths` whose mode has a bit beyond 0600 (the group's,
    others', execute) mode 0600; returns those changed. A missing one is skipped; one that
    cannot be changed raises OSError."""
    changed = []
    for path in paths:
        try:
            was = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if was & ~PRIVATE_MODE:
            path.chmod(PRIVATE_MODE)
            changed.append(Tightened(path, was))
    return changed
