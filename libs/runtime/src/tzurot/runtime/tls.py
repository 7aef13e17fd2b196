"""mTLS material: a development PKI, loading a cert-manager style folder, gRPC credentials.

Every service has its own certificate whose URI SAN `spiffe://tzurot.local/<identity>` names
it; a folder holds `ca.crt`, `tls.crt` and `tls.key`, the layout of a cert-manager Secret, so
local runs and Kubernetes read the same files.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from tzurot.runtime.errors import StartupError
from tzurot.runtime.regular_file import read_regular_file

SPIFFE_TRUST_DOMAIN = "tzurot.local"
SERVICE_IDENTITIES = ("gateway", "inference", "memory", "keyvault", "bot", "cli", "edge")
"""Every mTLS identity: the five services, the `tzurot` CLI and `edge` (the Envoy edge)."""


def spiffe_id(identity: str) -> str:
    """The URI SAN naming `identity`."""
    return f"spiffe://{SPIFFE_TRUST_DOMAIN}/{identity}"


@dataclass(frozen=True)
class TlsFiles:
    """PEM bytes of one identity: the trusted CA, its certificate chain and its private key."""

    ca: bytes
    cert: bytes
    key: bytes

    def __repr__(self) -> str:
        return "TlsFiles(ca=<pem>, cert=<pem>, key=<hidden>)"


def load_tls(tls_dir: Path) -> TlsFiles:
    """Reads and checks `ca.crt`, `tls.crt`, `tls.key`; any problem is a one-line StartupError."""
    ca = _read(tls_dir / "ca.crt", "TLS CA certificate")
    cert = _read(tls_dir / "tls.crt", "TLS certificate")
    key = _read(tls_dir / "tls.key", "TLS key")
    # Checked with the standard library's OpenSSL (`ssl`, which asyncio imports anyway), not
    # `cryptography`: a CLI command loads these on every start.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for path, data in ((tls_dir / "ca.crt", ca), (tls_dir / "tls.crt", cert)):
        try:
            context.load_verify_locations(cadata=data.decode("ascii"))
        except (ValueError, ssl.SSLError):
            raise StartupError(f"not a PEM certificate: {path}") from None
    try:
        context.load_cert_chain(tls_dir / "tls.crt", tls_dir / "tls.key", password=_encrypted)
    except (ValueError, ssl.SSLError, _EncryptedKeyError) as exc:
        if "MISMATCH" in str(exc).upper():
            raise StartupError(
                f"TLS key does not match the certificate {tls_dir / 'tls.crt'}: "
                f"{tls_dir / 'tls.key'}"
            ) from None
        raise StartupError(f"not an unencrypted PEM private key: {tls_dir / 'tls.key'}") from None
    return TlsFiles(ca=ca, cert=cert, key=key)


class _EncryptedKeyError(Exception):
    """The key asks for a password (OpenSSL would otherwise prompt on the terminal)."""


def _encrypted() -> str:
    raise _EncryptedKeyError


def _read(path: Path, what: str) -> bytes:
    """The file's bytes; a FIFO there (and anything but a regular file) is refused in one
    line instead of waiting for a writer forever: every service reads these at start."""
    try:
        return read_regular_file(what, path)[0]
    except FileNotFoundError:
        raise StartupError(f"{what} not found: {path} (run `tzurot certs`)") from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise StartupError(f"cannot read {what} {path}: {reason}") from None


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """Server side of mTLS: present our certificate, demand one signed by our CA."""
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)], root_certificates=tls.ca, require_client_auth=True
    )


def channel_credentials(tls: TlsFiles) -> grpc.ChannelCredentials:
    """Client side of mTLS: trust only our CA and present our own certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
    )


def generate_dev_pki(
    out_dir: Path,
    identities: Sequence[str],
    *,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    days: int = 825,
) -> None:
    """Writes a dev CA (kept if present) and one certificate folder per identity
    (tzurot.runtime.pki, which imports `cryptography` only when certificates are made)."""
    from tzurot.runtime.pki import generate_dev_pki as generate  # noqa: PLC0415 - see above

    generate(out_dir, identities, hosts=hosts, days=days)
