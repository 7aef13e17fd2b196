"""`tzurot certs`/`up` off Linux and without /proc: a system without O_PATH (macOS) opens the
key read-only without following a symlink and changes it through that descriptor (fchmod),
as before O_PATH; a Linux without /proc mounted (a chroot, a build sandbox) tells the key
as not changed and goes on, as it cannot change it by path without following a symlink."""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.unit.cli.test_certs_private_keys import env
from tzurot.cli import private_files
from tzurot.cli.private_files import NotTightened, tighten


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def without_o_path(monkeypatch: Any) -> ModuleType:
    """A fresh copy of tzurot.cli.private_files imported where os has no O_PATH (the copy
    in sys.modules, which other tests use, is left as it is)."""
    monkeypatch.delattr(os, "O_PATH")
    name = "private_files_without_o_path"
    spec = importlib.util.spec_from_file_location(name, private_files.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_without_o_path_a_loose_key_is_opened_and_changed_through_its_descriptor(
    tmp_path: Path, monkeypatch: Any
) -> None:
    key, closed = tmp_path / "tls.key", tmp_path / "ca.key"
    for path, bits in ((key, 0o644), (closed, 0o600)):
        path.write_text("key")
        path.chmod(bits)
    module = without_o_path(monkeypatch)
    real_open, real_fchmod = os.open, os.fchmod
    flags_seen: list[int] = []
    changed: list[int] = []

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        flags_seen.append(flags)
        return real_open(path, flags, *args, **kwargs)

    def fchmod(fd: int, bits: int) -> None:
        changed.append(bits)
        real_fchmod(fd, bits)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "fchmod", fchmod)

    found = module.tighten([key, closed, tmp_path / "missing.key"])

    assert [(type(n).__name__, n.path, n.was) for n in found] == [("Tightened", key, 0o644)]
    assert (mode(key), mode(closed)) == (0o600, 0o600)
    assert changed == [0o600]
    read_only = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    assert flags_seen == [read_only, read_only]


def test_without_o_path_a_symlink_or_a_socket_is_told_not_opened(
    tmp_path: Path, monkeypatch: Any
) -> None:
    shared = tmp_path / "shared.key"
    shared.write_text("key")
    shared.chmod(0o640)
    link, sock = tmp_path / "ca.key", tmp_path / "tls.key"
    link.symlink_to(shared)
    module = without_o_path(monkeypatch)
    opened: list[Any] = []
    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        opened.append(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(sock))
        sock.chmod(0o755)

        found = module.tighten([link, sock])

    assert [n.notice() for n in found] == [
        f"private key {link} is a symlink to {shared} with mode 0640; not changed (a symlink "
        "is not followed)",
        f"could not make private key {sock} 0600 (it has mode 0755): not a regular file",
    ]
    assert opened == []
    assert (mode(shared), mode(sock)) == (0o640, 0o755)


def test_certs_without_o_path_tightens_a_kept_key(tmp_path: Path) -> None:
    """`tzurot certs` where os has no O_PATH, from its import on (as on macOS)."""
    out = tmp_path / "certs"
    code = "import os, runpy; del os.O_PATH; runpy.run_module('tzurot.cli', run_name='__main__')"
    argv = [sys.executable, "-c", code, "certs", "--out", str(out)]

    first = subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=60, check=False)
    assert first.returncode == 0, first.stderr
    (out / "ca" / "ca.key").chmod(0o644)
    again = subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=60, check=False)

    assert (again.returncode, again.stderr) == (
        0,
        f"tzurot: private key {out / 'ca' / 'ca.key'} had mode 0644; made it 0600 (its owner "
        "only)\n",
    )
    assert mode(out / "ca" / "ca.key") == 0o600


@pytest.mark.parametrize("error", [errno.ENOENT, errno.ENOTDIR])
def test_without_proc_a_loose_key_is_told_not_changed(
    tmp_path: Path, monkeypatch: Any, error: int
) -> None:
    key, other = tmp_path / "tls.key", tmp_path / "other.key"
    for path in (key, other):
        path.write_text("key")
        path.chmod(0o644)
    real_chmod = os.chmod

    def chmod(path: Any, bits: int, *args: Any, **kwargs: Any) -> None:
        if str(path).startswith("/proc/"):  # /proc not mounted, or not a folder
            raise OSError(error, os.strerror(error), str(path))
        real_chmod(path, bits, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", chmod)

    found = tighten([key, other])

    why = "no /proc to change it without following symlinks"
    assert found == [NotTightened(key, 0o644, why), NotTightened(other, 0o644, why)]
    assert found[0].notice() == (
        f"could not make private key {key} 0600 (it has mode 0644): no /proc to change it "
        "without following symlinks"
    )
    assert (mode(key), mode(other)) == (0o644, 0o644)
