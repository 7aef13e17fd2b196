"""tests/unit/cli/unprivileged.py binds root by file modes also when root was started with
the capabilities in its inheritable and ambient sets (an older container runtime, a CI step
wrapped in `setpriv --inh-caps`/`capsh`): dropping them from the bounding set alone leaves
them effective after the exec. And when they stay effective anyway, the command is not run:
the test is skipped, instead of passing without testing anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli import unprivileged
from tests.unit.cli.unprivileged import CANNOT_DROP, bound_by_modes, skip_when_not_dropped

# Puts CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER in the inheritable and the ambient
# sets (PR_CAP_AMBIENT 47, PR_CAP_AMBIENT_RAISE 2), then runs the rest of argv.
INHERITING = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
header, sets = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
assert libc.capget(header, sets) == 0
sets[2] |= 0b1110
assert libc.capset(header, sets) == 0, os.strerror(ctypes.get_errno())
for cap in (1, 2, 3):
    assert libc.prctl(47, 2, cap, 0, 0) == 0, os.strerror(ctypes.get_errno())
os.execv(sys.argv[1], sys.argv[1:])
"""

WRITE = """
import sys
from pathlib import Path
try:
    (Path(sys.argv[1]) / "written").write_text("x")
except PermissionError:
    print("bound")
else:
    print("not bound")
"""


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def read_only(tmp_path: Path) -> Any:
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_capabilities_root_inherits_are_dropped_too(read_only: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root has capabilities to inherit")

    done = run(
        [sys.executable, "-c", INHERITING,
         *bound_by_modes([sys.executable, "-c", WRITE, str(read_only)])]
    )  # fmt: skip

    skip_when_not_dropped(done.returncode, done.stderr)
    assert (done.returncode, done.stdout, done.stderr) == (0, "bound\n", "")
    assert not (read_only / "written").exists()


def test_capabilities_still_effective_skip_the_test(read_only: Path, monkeypatch: Any) -> None:
    """A drop that leaves them (here: one that does nothing) runs nothing, and skips."""
    if os.geteuid() != 0:
        pytest.skip("only root has capabilities to keep")
    monkeypatch.setattr(
        unprivileged, "_DROP", "import os, sys; os.execv(sys.argv[1], sys.argv[1:])"
    )

    done = run(bound_by_modes([sys.executable, "-c", WRITE, str(read_only)]))

    assert (done.returncode, done.stdout) == (CANNOT_DROP, ""), done.stderr
    assert "capabilities kept after exec" in done.stderr
    assert not (read_only / "written").exists()
    with pytest.raises(pytest.skip.Exception, match="file modes would not bind"):
        skip_when_not_dropped(done.returncode, done.stderr)
