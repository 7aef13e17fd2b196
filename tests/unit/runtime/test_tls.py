"""generate_dev_pki() and load_tls(): the files, the certificates, idempotence, errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tzurot.runtime.errors import StartupError
from tzurot.runtime.identity import identity_from_auth_context
from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki, load_tls


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_writes_ca_and_one_folder_per_identity(tmp_path: Path) -> None:
    generate_dev_pki(
        tmp_path, SERVICE_IDENTITIES, hosts=("localhost", "10.0.0.7", "tzurot.example")
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ca", *SERVICE_IDENTITIES])
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600
    ca = _cert(tmp_path / "ca" / "ca.crt")
    for identity in SERVICE_IDENTITIES:
        folder = tmp_path / identity
        assert stat.S_IMODE((folder / "tls.key").stat().st_mode) == 0o600
        assert (folder / "ca.crt").read_bytes() == (tmp_path / "ca" / "ca.crt").read_bytes()
        cert = _cert(folder / "tls.crt")
        cert.verify_directly_issued_by(ca)
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert cert.subject.rfc4514_string() == f"CN={identity}"
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
            f"spiffe://tzurot.local/{identity}"
        ]
        assert set(san.get_values_for_type(x509.DNSName)) == {
            identity,
            f"{identity}.tzurot.svc",
            "localhost",
            "tzurot.example",
        }
        assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
            "127.0.0.1",
            "10.0.0.7",
        }
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_is_idempotent_and_reuses_the_ca(tmp_path: Path) -> None:
    generate_dev_pki(tmp_path, ["gateway"])
    first = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    generate_dev_pki(tmp_path, ["gateway", "memory"])
    for path, data in first.items():
        assert path.read_bytes() == data
    _cert(tmp_path / "memory" / "tls.crt").verify_directly_issued_by(
        _cert(tmp_path / "ca" / "ca.crt")
    )


def test_reissues_a_leaf_not_signed_by_the_ca(tmp_path: Path) -> None:
    generate_dev_pki(tmp_path / "a", ["gateway"])
    generate_dev_pki(tmp_path / "b", ["gateway"])
    for name in ("tls.crt", "tls.key"):
        (tmp_path / "a" / "gateway" / name).write_bytes(
            (tmp_path / "b" / "gateway" / name).read_bytes()
        )
    generate_dev_pki(tmp_path / "a", ["gateway"])
    _cert(tmp_path / "a" / "gateway" / "tls.crt").verify_directly_issued_by(
        _cert(tmp_path / "a" / "ca" / "ca.crt")
    )


def test_reissues_when_hosts_change(tmp_path: Path) -> None:
    generate_dev_pki(tmp_path, ["gateway"])
    before = (tmp_path / "gateway" / "tls.crt").read_bytes()
    generate_dev_pki(tmp_path, ["gateway"], hosts=("gateway.internal",))
    cert = _cert(tmp_path / "gateway" / "tls.crt")
    assert (tmp_path / "gateway" / "tls.crt").read_bytes() != before
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "gateway.internal" in san.get_values_for_type(x509.DNSName)


def test_load_tls_reads_the_three_files(tmp_path: Path) -> None:
    generate_dev_pki(tmp_path, ["bot"])
    tls = load_tls(tmp_path / "bot")
    assert tls.key.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert b"PRIVATE" not in repr(tls).encode()


def test_load_tls_missing_file_is_one_line(tmp_path: Path) -> None:
    generate_dev_pki(tmp_path, ["bot"])
    (tmp_path / "bot" / "tls.key").unlink()
    with pytest.raises(StartupError) as caught:
        load_tls(tmp_path / "bot")
    assert (
        str(caught.value)
        == f"TLS key not found: {tmp_path / 'bot' / 'tls.key'} (run `tzurot certs`)"
    )


def test_load_tls_rejects_garbage(tmp_path: Path) -> None:
    generate_dev_pki(tmp_path, ["bot"])
    (tmp_path / "bot" / "tls.crt").write_text("not a certificate")
    with pytest.raises(StartupError, match=r"^not a PEM certificate: .*tls\.crt$"):
        load_tls(tmp_path / "bot")
    generate_dev_pki(tmp_path, ["bot"])  # repairs it
    (tmp_path / "bot" / "tls.key").write_text(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(StartupError, match=r"^not an unencrypted PEM private key: .*tls\.key$"):
        load_tls(tmp_path / "bot")


def test_identity_falls_back_to_the_pem_certificate(tmp_path: Path) -> None:
    generate_dev_pki(tmp_path, ["memory"])
    pem = (tmp_path / "memory" / "tls.crt").read_bytes()
    assert identity_from_auth_context({"x509_pem_cert": [pem]}) == "memory"
    assert identity_from_auth_context({"peer_uri": [b"spiffe://other.domain/memory"]}) is None
    assert identity_from_auth_context({}) is None
