"""`tzurot certs`/`up` tighten a key by looking it up (O_PATH), not by opening it: an own key
its owner may not read (mode 0044) is still made 0600, as chmod allows its owner; a socket or
a device node at a key's path is told, not opened (opening a socket fails with ENXIO; a
device's open can have side effects) and the command goes on."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli.unprivileged import bound_by_modes, skip_when_not_dropped
from tzurot.cli.private_files import NotTightened, Tightened, tighten


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


TIGHTEN = """
import sys
from pathlib import Path
from tzurot.cli.private_files import tighten
for notice in tighten([Path(sys.argv[1])]):
    print(notice.notice())
"""


@pytest.mark.parametrize("was", [0o044, 0o244, 0o204])
def test_an_own_key_its_owner_may_not_read_is_made_private(tmp_path: Path, was: int) -> None:
    key = tmp_path / "tls.key"
    key.write_text("key")
    key.chmod(was)

    done = subprocess.run(  # our own interpreter, no shell; file modes bind it (as root too)
        bound_by_modes([sys.executable, "-c", TIGHTEN, str(key)]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    skip_when_not_dropped(done.returncode, done.stderr)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"{Tightened(key, was).notice()}\n"
    assert mode(key) == 0o600


def test_a_socket_at_a_key_path_is_told_not_raised(tmp_path: Path) -> None:
    key = tmp_path / "tls.key"
    other = tmp_path / "other.key"
    other.write_text("key")
    other.chmod(0o644)
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(key))
        key.chmod(0o755)

        found = tighten([key, other])

    assert found == [NotTightened(key, 0o755, "not a regular file"), Tightened(other, 0o644)]
    assert mode(key) == 0o755


def test_a_device_node_at_a_key_path_is_told_not_opened(tmp_path: Path, monkeypatch: Any) -> None:
    key = tmp_path / "tls.key"
    try:
        os.mknod(key, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # as /dev/null
    except PermissionError:
        pytest.skip("making a device node needs CAP_MKNOD")
    key.chmod(0o666)
    real_open = os.open
    flags_seen: list[int] = []

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        flags_seen.append(flags)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)

    assert tighten([key]) == [NotTightened(key, 0o666, "not a regular file")]

    assert mode(key) == 0o666
    # Looked up, not opened: no access mode, so no read permission needed and no driver open.
    assert flags_seen == [os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC]
