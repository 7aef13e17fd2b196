"""Run a command that file modes bind as they bind a user, also when the tests run as root.

Root's permission checks are skipped by its capabilities (CAP_DAC_OVERRIDE and friends), so a
folder mode 0555 or a file mode 0044 stops nobody. As root the command is started with those
capabilities dropped from its bounding set (what an exec keeps): it is still root, owns the
same files, but their modes now hold for it (a root-owned 0555 folder is read-only to it).
Anyone else runs the command as it is.
"""

from __future__ import annotations

import os
import sys

import pytest

CANNOT_DROP = 77
"""The exit code of the wrapper when the capabilities cannot be dropped (no CAP_SETPCAP)."""

# CAP_DAC_OVERRIDE (1), CAP_DAC_READ_SEARCH (2) and CAP_FOWNER (3), by PR_CAPBSET_DROP (24).
_DROP = f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for cap in (1, 2, 3):
    if libc.prctl(24, cap, 0, 0, 0) != 0:
        print("cannot drop capability", cap, os.strerror(ctypes.get_errno()), file=sys.stderr)
        sys.exit({CANNOT_DROP})
os.execv(sys.argv[1], sys.argv[1:])
"""


def bound_by_modes(argv: list[str]) -> list[str]:
    """`argv` (starting with the program's path) run so that file modes bind it."""
    if os.geteuid() != 0:
        return argv
    return [sys.executable, "-c", _DROP, *argv]


def skip_when_not_dropped(returncode: int, stderr: str) -> None:
    """Skips the test when root could not drop the capabilities (so nothing was tested)."""
    if os.geteuid() == 0 and returncode == CANNOT_DROP and "cannot drop capability" in stderr:
        pytest.skip(stderr.strip())
