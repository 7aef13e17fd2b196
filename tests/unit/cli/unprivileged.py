"""Run a command that file modes bind as they bind a user, also when the tests run as root.

Root's permission checks are skipped by its capabilities (CAP_DAC_OVERRIDE and friends), so a
folder mode 0555 or a file mode 0044 stops nobody. As root the command is started with those
capabilities dropped from its bounding set (what an exec may give) and its inheritable and
ambient sets cleared (what an exec keeps regardless: a runtime or a wrapper may start root
with them set): it is still root, owns the same files, but their modes now hold for it (a
root-owned 0555 folder is read-only to it). Then, after an exec, it checks that they are gone
before it runs the command: when they are not, it exits 77 and the test is skipped, so no
test passes without testing anything. Anyone else runs the command as it is.
"""

from __future__ import annotations

import os
import sys

import pytest

CANNOT_DROP = 77
"""The exit code of the wrapper when the capabilities cannot be dropped (no CAP_SETPCAP), or
are still effective after the exec."""

_SAYS = "unprivileged: "
"""How the wrapper's own messages start (on standard error)."""

# The capabilities are CAP_DAC_OVERRIDE (1), CAP_DAC_READ_SEARCH (2) and CAP_FOWNER (3).
# capget/capset take a header (_LINUX_CAPABILITY_VERSION_3, pid 0: this thread) and two
# {effective, permitted, inheritable} words: capabilities 0-31, then 32-63.
_CAPS = f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
header, sets = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
def failed(what):
    print(f"{_SAYS}cannot drop capability {{what}}: {{os.strerror(ctypes.get_errno())}}",
          file=sys.stderr)
    sys.exit({CANNOT_DROP})
if libc.capget(header, sets) != 0:
    failed("sets (capget)")
"""

# Dropped from the bounding set (PR_CAPBSET_DROP, 24), the ambient set cleared
# (PR_CAP_AMBIENT 47, PR_CAP_AMBIENT_CLEAR_ALL 4) and the inheritable set emptied; then the
# check below is exec'd.
_DROP = (
    _CAPS
    + """
for cap in (1, 2, 3):
    if libc.prctl(24, cap, 0, 0, 0) != 0:
        failed(cap)
if libc.prctl(47, 4, 0, 0, 0) != 0:
    failed("ambient set")
sets[2] = sets[5] = 0
if libc.capset(header, sets) != 0:
    failed("inheritable set")
os.execv(sys.argv[1], sys.argv[1:])
"""
)

# After the exec: none of the three may be effective any more, else nothing would be tested.
_CHECK = (
    _CAPS
    + f"""
if sets[0] & 0b1110:
    print("{_SAYS}capabilities kept after exec (effective: %08x): file modes would not bind"
          % sets[0], file=sys.stderr)
    sys.exit({CANNOT_DROP})
os.execv(sys.argv[1], sys.argv[1:])
"""
)


def bound_by_modes(argv: list[str]) -> list[str]:
    """`argv` (starting with the program's path) run so that file modes bind it."""
    if os.geteuid() != 0:
        return argv
    return [sys.executable, "-c", _DROP, sys.executable, "-c", _CHECK, *argv]


def skip_when_not_dropped(returncode: int, stderr: str) -> None:
    """Skips the test when root could not drop the capabilities (so nothing was tested)."""
    if os.geteuid() == 0 and returncode == CANNOT_DROP and stderr.startswith(_SAYS):
        pytest.skip(stderr.strip())
