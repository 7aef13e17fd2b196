"""Who is calling: the peer's SPIFFE identity from its certificate, and per-call context.

gRPC exposes the verified client certificate in `context.auth_context()`: `peer_spiffe_id`
(and `peer_uri`, `x509_subject_alternative_name`, `x509_pem_cert`). The identity is the
last path segment of `spiffe://tzurot.local/<name>`; a certificate from another trust
domain names nobody. The server interceptor binds caller and request id in contextvars.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar

import grpc

from tzurot.runtime.tls import SPIFFE_TRUST_DOMAIN

REQUEST_ID_HEADER = "x-request-id"
_SPIFFE_PREFIX = f"spiffe://{SPIFFE_TRUST_DOMAIN}/"
_MAX_REQUEST_ID = 128

_caller: ContextVar[str | None] = ContextVar("tzurot_caller", default=None)
_request_id: ContextVar[str] = ContextVar("tzurot_request_id", default="")


def current_caller() -> str | None:
    """The authenticated identity of the peer of the RPC being served, if any."""
    return _caller.get()


def current_request_id() -> str:
    """The request id of the RPC being served ("" outside of one)."""
    return _request_id.get()


def new_request_id() -> str:
    """A fresh random request id."""
    return uuid.uuid4().hex


@contextlib.contextmanager
def bind_call(caller: str | None, request_id: str) -> Iterator[None]:
    """Sets caller and request id for the duration of the block."""
    caller_token = _caller.set(caller)
    request_token = _request_id.set(request_id)
    try:
        yield
    finally:
        try:
            _request_id.reset(request_token)
            _caller.reset(caller_token)
        except ValueError:
            # Closed from another context (an abandoned stream finalized by the event loop's
            # async-generator hook): nothing of ours to restore there.
            pass


def request_id_from(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The caller's `x-request-id` when it is sane, else a fresh one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str):
            cleaned = value.strip()
            if 0 < len(cleaned) <= _MAX_REQUEST_ID and cleaned.isprintable():
                return cleaned
    return new_request_id()


def peer_identity(context: grpc.aio.ServicerContext[object, object]) -> str | None:
    """The tzurot identity in the peer certificate's URI SAN, or None (no or foreign cert)."""
    return identity_from_auth_context(context.auth_context())


def identity_from_auth_context(auth: Mapping[str, Iterable[bytes]]) -> str | None:
    """Reads the identity from the properties gRPC exposes for the peer certificate."""
    for key in ("peer_spiffe_id", "peer_uri", "x509_subject_alternative_name"):
        for value in auth.get(key, ()):
            name = _identity_from_uri(value.decode("utf-8", "replace"))
            if name is not None:
                return name
    for pem in auth.get("x509_pem_cert", ()):
        return _identity_from_pem(pem)
    return None


def _identity_from_pem(pem: bytes) -> str | None:
    # Lazily: clients import this module for request ids, and need no certificate parsing.
    from cryptography import x509  # noqa: PLC0415

    try:
        cert = x509.load_pem_x509_certificate(pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        name = _identity_from_uri(uri)
        if name is not None:
            return name
    return None


def _identity_from_uri(uri: str) -> str | None:
    if not uri.startswith(_SPIFFE_PREFIX):
        return None
    name = uri.removeprefix(_SPIFFE_PREFIX)
    return name if name and "/" not in name else None
