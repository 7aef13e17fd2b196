"""A development PKI: a CA and one certificate per identity (`tzurot certs`, tests).

Apart from tls.py so that loading certificates (every service, every CLI command) does not
import `cryptography` (~0.1 s): only making them does.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ExtensionNotFound
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tzurot.runtime.errors import StartupError
from tzurot.runtime.regular_file import read_regular_file
from tzurot.runtime.tls import spiffe_id

_CA_NAME = "Tzurot development CA"
_RENEW_BEFORE = dt.timedelta(days=30)


def generate_dev_pki(
    out_dir: Path,
    identities: Sequence[str],
    *,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    days: int = 825,
) -> None:
    """Writes a dev CA (kept if present) and one certificate folder per identity.

    Idempotent: an identity certificate that is signed by the CA, names the requested hosts
    and is not about to expire is kept as it is.
    """
    ca_cert, ca_key = _ensure_ca(out_dir / "ca", days)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    for identity in identities:
        folder = out_dir / identity
        names = _subject_alt_names(identity, hosts)
        if _leaf_is_current(folder, ca_cert, names):
            continue
        cert, key = _issue_leaf(identity, names, ca_cert, ca_key, days)
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / "ca.crt", ca_pem)
        _write(folder / "tls.crt", cert.public_bytes(serialization.Encoding.PEM))
        _write(folder / "tls.key", _key_pem(key), private=True)


def _ensure_ca(ca_dir: Path, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = ca_dir / "ca.crt", ca_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(_read(key_path, "dev CA key"), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise StartupError(f"dev CA key is not an EC key: {key_path}")
        return x509.load_pem_x509_certificate(_read(cert_path, "dev CA certificate")), key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _CA_NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=max(days, 3650)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca_dir.mkdir(parents=True, exist_ok=True)
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _subject_alt_names(identity: str, hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id(identity))]
    seen: set[str] = set()
    for host in (identity, f"{identity}.tzurot.svc", "localhost", "127.0.0.1", *hosts):
        if host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _leaf_is_current(
    folder: Path, ca_cert: x509.Certificate, names: list[x509.GeneralName]
) -> bool:
    """Whether the certificate folder may be kept; one holding anything but regular files
    (a FIFO: refused without waiting) is not, and is made anew."""
    try:
        cert = x509.load_pem_x509_certificate(_read(folder / "tls.crt", "TLS certificate"))
        serialization.load_pem_private_key(_read(folder / "tls.key", "TLS key"), password=None)
        ca_pem = _read(folder / "ca.crt", "TLS CA certificate")
        if ca_pem != ca_cert.public_bytes(serialization.Encoding.PEM):
            return False
        cert.verify_directly_issued_by(ca_cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, StartupError, ValueError, TypeError, InvalidSignature, ExtensionNotFound):
        return False  # StartupError: not a regular file there (a FIFO), made anew
    expires = cert.not_valid_after_utc
    return set(san) == set(names) and expires - dt.datetime.now(dt.UTC) > _RENEW_BEFORE


def _issue_leaf(
    identity: str,
    names: list[x509.GeneralName],
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    days: int,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_agreement=True,
                content_commitment=False,
                data_encipherment=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _read(path: Path, what: str) -> bytes:
    """A file kept from an earlier run, read without waiting: anything but a regular file
    there (a FIFO would wait for a writer forever) is a one-line StartupError."""
    return read_regular_file(what, path)[0]


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Writes atomically; private files are created 0600 and never exist more open."""
    tmp = path.with_name(f".{path.name}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(os.open(tmp, flags, 0o600 if private else 0o644), "wb") as handle:
        handle.write(data)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)
