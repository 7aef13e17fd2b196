"""Certificate files are read without waiting: a FIFO where a certificate or key should be
is refused in one line at once (or, in a certificate folder `tzurot certs` keeps, replaced).

`load_tls`, which every service and CLI command calls at start, read `ca.crt`, `tls.crt` and
`tls.key` with a plain read: a FIFO there made it wait for a writer forever (a service hung
at start). `generate_dev_pki` (`tzurot certs`, `tzurot up`) did the same with the CA's files
and with an identity's. Now the CA's, and load_tls's, are refused in one line; an identity's
folder holding one is not current, and is made anew.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.unit.file_kinds import finished_within
from tzurot.runtime.errors import StartupError
from tzurot.runtime.tls import generate_dev_pki, load_tls


def swapped_for_a_fifo(path: Path) -> Path:
    path.unlink()
    os.mkfifo(path)
    return path


LOADED = [("ca.crt", "TLS CA certificate"), ("tls.crt", "TLS certificate"), ("tls.key", "TLS key")]


@pytest.mark.parametrize(("name", "what"), LOADED)
def test_load_tls_refuses_a_fifo_at_once(tmp_path: Path, name: str, what: str) -> None:
    generate_dev_pki(tmp_path, ["bot"])
    fifo = swapped_for_a_fifo(tmp_path / "bot" / name)

    raised = finished_within(lambda: load_tls(tmp_path / "bot"), fifo, 5)

    assert isinstance(raised, StartupError)
    assert str(raised) == f"{what} {fifo} is a FIFO, not a regular file"


@pytest.mark.parametrize(
    ("name", "what"), [("ca.key", "dev CA key"), ("ca.crt", "dev CA certificate")]
)
def test_a_fifo_in_the_ca_folder_is_refused_at_once(tmp_path: Path, name: str, what: str) -> None:
    generate_dev_pki(tmp_path, ["bot"])
    fifo = swapped_for_a_fifo(tmp_path / "ca" / name)

    raised = finished_within(lambda: generate_dev_pki(tmp_path, ["bot"]), fifo, 5)

    assert isinstance(raised, StartupError)
    assert str(raised) == f"{what} {fifo} is a FIFO, not a regular file"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # the CA is not made anew over it


@pytest.mark.parametrize("name", ["tls.key", "tls.crt", "ca.crt"])
def test_a_fifo_in_an_identity_folder_is_made_anew(tmp_path: Path, name: str) -> None:
    generate_dev_pki(tmp_path, ["bot"])
    fifo = swapped_for_a_fifo(tmp_path / "bot" / name)

    raised = finished_within(lambda: generate_dev_pki(tmp_path, ["bot"]), fifo, 5)

    assert raised is None
    assert stat.S_ISREG(os.lstat(fifo).st_mode)
    assert load_tls(tmp_path / "bot").ca == (tmp_path / "ca" / "ca.crt").read_bytes()
