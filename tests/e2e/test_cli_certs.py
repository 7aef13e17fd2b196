"""`tzurot certs --out <dir>` through the real console script: a development CA and one
certificate folder per service identity (ca.crt, tls.crt, tls.key), private keys mode 0600,
each certificate signed by the CA and naming its identity; run again, it keeps what is there
and still valid (the CA and every certificate, byte for byte) and reissues only what is
missing, under the same CA.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tzurot.runtime.tls import SERVICE_IDENTITIES, spiffe_id

pytestmark = pytest.mark.e2e

TZUROT = Path(sys.executable).parent / "tzurot"
"""The console script, as installed (what an operator types)."""


def tzurot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    return subprocess.run(  # the installed script, no shell
        [str(TZUROT), *args], env=clean, cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def check_pki(out: Path) -> None:
    """The CA signed every identity's certificate, which names it and matches its key."""
    ca = x509.load_pem_x509_certificate((out / "ca" / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((out / "ca" / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    assert ca_key.public_key() == ca.public_key()
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert mode(out / "ca" / "ca.key") == 0o600
    for identity in SERVICE_IDENTITIES:
        folder = out / identity
        assert (folder / "ca.crt").read_bytes() == (out / "ca" / "ca.crt").read_bytes()
        cert = x509.load_pem_x509_certificate((folder / "tls.crt").read_bytes())
        cert.verify_directly_issued_by(ca)
        key = serialization.load_pem_private_key((folder / "tls.key").read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.public_key() == cert.public_key()
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert spiffe_id(identity) in san.get_values_for_type(x509.UniformResourceIdentifier)
        assert "localhost" in san.get_values_for_type(x509.DNSName)
        assert mode(folder / "tls.key") == 0o600, identity
        assert not mode(folder / "tls.crt") & 0o022  # nobody else may change it


def test_certs_writes_a_ca_and_every_identity_then_keeps_them(tmp_path: Path) -> None:
    out = tmp_path / "made" / "certs"  # missing folders are made
    done = tzurot("certs", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Certificates for {', '.join(SERVICE_IDENTITIES)} are in {out}/\n"
    written = files(out)
    assert set(written) == {"ca/ca.crt", "ca/ca.key"} | {
        f"{identity}/{name}"
        for identity in SERVICE_IDENTITIES
        for name in ("ca.crt", "tls.crt", "tls.key")
    }
    check_pki(out)
    assert not (tmp_path / ".data").exists()  # only where --out said

    # Again: nothing is overwritten (the CA, every certificate and key stay as they were).
    again = tzurot("certs", "--out", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == done.stdout
    assert files(out) == written

    # A certificate lost is issued again, under the same CA; the others are kept.
    (out / "memory" / "tls.key").unlink()
    redo = tzurot("certs", "--out", str(out), cwd=tmp_path)
    assert redo.returncode == 0, redo.stderr
    now = files(out)
    assert {name for name in now if now[name] != written.get(name)} == {
        "memory/tls.crt",
        "memory/tls.key",
    }
    check_pki(out)


def test_certs_defaults_to_the_local_data_folder(tmp_path: Path) -> None:
    done = tzurot("certs", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(" are in .data/certs/\n")
    check_pki(tmp_path / ".data" / "certs")


def test_a_folder_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = tzurot("certs", "--out", str(blocker / "certs"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"tzurot: cannot write certificates to {blocker / 'certs'}: ")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_a_ca_that_cannot_be_read_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A damaged CA is said in one line (before the fix: a ValueError traceback, exit 1),
    and left as it is; moved away, the next run makes a new CA and reissues every identity."""
    out = tmp_path / "certs"
    assert tzurot("certs", "--out", str(out), cwd=tmp_path).returncode == 0
    first = files(out)
    (out / "ca" / "ca.key").write_text("-----BEGIN PRIVATE KEY-----\nbroken\n")
    damaged = files(out)
    done = tzurot("certs", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"tzurot: the CA in {out / 'ca'} cannot be used (ca.crt and ca.key unreadable or not a "
        "development CA); move that folder away to make a new CA\n"
    )
    assert files(out) == damaged  # nothing reissued under a CA it cannot use

    (out / "ca").rename(tmp_path / "old-ca")
    redo = tzurot("certs", "--out", str(out), cwd=tmp_path)
    assert redo.returncode == 0, redo.stderr
    check_pki(out)
    now = files(out)
    assert all(now[name] != first[name] for name in now if not name.endswith("ca.key"))
