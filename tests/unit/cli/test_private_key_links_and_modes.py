"""`tzurot certs`/`up` tighten a loosened private key without following a symlink (the file it
points to may be a key shared on purpose: told, not changed) and, when a key's mode cannot
be changed (another owner's file, a read-only mount), say so and go on as before. The
temporary file `tzurot keys` writes the master key through is 0600 even when a looser one
was left behind."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli.test_cli_failures import tzurot
from tzurot.cli.__main__ import certs
from tzurot.cli.keys import add_master_key_version
from tzurot.cli.private_files import (
    NotTightened,
    SymlinkLeft,
    Tightened,
    tighten,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}


def test_a_symlink_to_a_shared_key_is_told_and_left_as_it_is(tmp_path: Path) -> None:
    shared = tmp_path / "ssl" / "shared.key"
    shared.parent.mkdir()
    shared.write_text("key")
    shared.chmod(0o640)  # group-readable on purpose (nginx, ssl-cert)
    link = tmp_path / "tls.key"
    link.symlink_to(shared)
    closed = tmp_path / "closed.key"
    closed.write_text("key")
    closed.chmod(0o600)
    (tmp_path / "closed-link.key").symlink_to(closed)
    (tmp_path / "dangling.key").symlink_to(tmp_path / "gone.key")

    found = tighten([link, tmp_path / "closed-link.key", tmp_path / "dangling.key"])

    assert found == [SymlinkLeft(link, 0o640, shared)]
    assert mode(shared) == 0o640
    assert found[0].notice() == (
        f"private key {link} is a symlink to {shared} with mode 0640; not changed (a symlink "
        "is not followed)"
    )


def test_certs_leaves_a_symlinked_ca_key_alone_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    assert tzurot("certs", "--out", str(out), env=env(), cwd=tmp_path).returncode == 0
    ca_key = out / "ca" / "ca.key"
    kept = tmp_path / "kept" / "ca.key"
    kept.parent.mkdir()
    ca_key.rename(kept)
    kept.chmod(0o644)
    ca_key.symlink_to(kept)

    again = tzurot("certs", "--out", str(out), env=env(), cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    assert again.stderr == (
        f"tzurot: private key {ca_key} is a symlink to {kept} with mode 0644; not changed (a "
        "symlink is not followed)\n"
    )
    assert mode(kept) == 0o644
    assert ca_key.is_symlink()


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (PermissionError(errno.EPERM, "Operation not permitted"), "Operation not permitted"),
        (OSError(errno.EROFS, "Read-only file system"), "Read-only file system"),
    ],
)
def test_a_key_whose_mode_cannot_change_is_told_and_certs_goes_on(
    tmp_path: Path, monkeypatch: Any, capsys: pytest.CaptureFixture[str], error: OSError, said: str
) -> None:
    out = tmp_path / "certs"
    certs(out=out)
    gateway_key = out / "gateway" / "tls.key"
    gateway_key.chmod(0o644)
    loosened = out / "ca" / "ca.key"
    loosened.chmod(0o640)
    capsys.readouterr()
    real_chmod = os.chmod
    gateway_inode = gateway_key.stat().st_ino

    def chmod(path: Any, mode: int, **kwargs: Any) -> None:
        if os.stat(path).st_ino == gateway_inode:  # another owner's file, a read-only mount
            raise error
        real_chmod(path, mode, **kwargs)

    monkeypatch.setattr(os, "chmod", chmod)

    certs(out=out)  # no typer.Exit: it succeeds, as it did before the check

    shown = capsys.readouterr()
    assert shown.err.splitlines() == [
        f"tzurot: private key {loosened} had mode 0640; made it 0600 (its owner only)",
        f"tzurot: could not make private key {gateway_key} 0600 (it has mode 0644): {said}",
    ]
    assert shown.out.startswith("Certificates for ")
    assert mode(loosened) == 0o600


def test_tighten_raises_any_other_error(tmp_path: Path, monkeypatch: Any) -> None:
    key = tmp_path / "tls.key"
    key.write_text("key")
    key.chmod(0o604)
    assert tighten([key]) == [Tightened(key, 0o604)]
    key.chmod(0o604)

    def chmod(*_: Any, **__: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "chmod", chmod)
    with pytest.raises(OSError, match="Input/output error"):
        tighten([key])
    assert NotTightened(key, 0o644, "why").notice() == (
        f"could not make private key {key} 0600 (it has mode 0644): why"
    )


def test_the_master_key_temporary_file_is_0600_whatever_was_left(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text("1:" + "A" * 43 + "=\n")
    key_file.chmod(0o600)
    leftover = tmp_path / "master.key.tmp"
    leftover.write_text("half a rotation")
    leftover.chmod(0o644)

    assert add_master_key_version(key_file) == 2

    assert mode(key_file) == 0o600
    assert not leftover.exists()
    assert [line.split(":")[0] for line in key_file.read_text().split()] == ["1", "2"]


def test_a_symlink_left_as_the_temporary_file_is_not_written_through(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text("1:" + "A" * 43 + "=\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not a key file")
    (tmp_path / "master.key.tmp").symlink_to(elsewhere)

    add_master_key_version(key_file)

    assert elsewhere.read_text() == "not a key file"
    assert not key_file.is_symlink()
    assert mode(key_file) == 0o600
