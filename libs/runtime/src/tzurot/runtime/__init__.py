"""Shared runtime of every Tzurot service: settings, logging, errors, mTLS gRPC plumbing.

Import the modules for the full API; the names most services need are re-exported here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tzurot.runtime.authz import AuthorizationPolicy
    from tzurot.runtime.client import secure_channel
    from tzurot.runtime.config import ServiceSettings, secret_values
    from tzurot.runtime.errors import (
        AlreadyExists,
        DeadlineExceeded,
        FailedPrecondition,
        Internal,
        InvalidArgument,
        NotFound,
        PermissionDenied,
        ResourceExhausted,
        StartupError,
        TzurotError,
        Unauthenticated,
        Unavailable,
        error_from_code,
        from_rpc_error,
        to_status,
    )
    from tzurot.runtime.identity import current_caller, current_request_id, peer_identity
    from tzurot.runtime.logging import configure_logging
    from tzurot.runtime.main import run_service
    from tzurot.runtime.redaction import redact
    from tzurot.runtime.server import (
        RunningServer,
        ServiceRegistration,
        create_server,
        serve_until_signal,
        wait_for_termination_signal,
    )
    from tzurot.runtime.tls import (
        SERVICE_IDENTITIES,
        TlsFiles,
        channel_credentials,
        generate_dev_pki,
        load_tls,
        server_credentials,
    )

# Re-exports load on first use: `tzurot.runtime.errors` alone must not pull the server,
# logging and settings stacks into a command-line tool that only prints its help.
_EXPORTS = {
    "AuthorizationPolicy": "tzurot.runtime.authz",
    "secure_channel": "tzurot.runtime.client",
    "ServiceSettings": "tzurot.runtime.config",
    "secret_values": "tzurot.runtime.config",
    "AlreadyExists": "tzurot.runtime.errors",
    "DeadlineExceeded": "tzurot.runtime.errors",
    "FailedPrecondition": "tzurot.runtime.errors",
    "Internal": "tzurot.runtime.errors",
    "InvalidArgument": "tzurot.runtime.errors",
    "NotFound": "tzurot.runtime.errors",
    "PermissionDenied": "tzurot.runtime.errors",
    "ResourceExhausted": "tzurot.runtime.errors",
    "StartupError": "tzurot.runtime.errors",
    "TzurotError": "tzurot.runtime.errors",
    "Unauthenticated": "tzurot.runtime.errors",
    "Unavailable": "tzurot.runtime.errors",
    "error_from_code": "tzurot.runtime.errors",
    "from_rpc_error": "tzurot.runtime.errors",
    "to_status": "tzurot.runtime.errors",
    "current_caller": "tzurot.runtime.identity",
    "current_request_id": "tzurot.runtime.identity",
    "peer_identity": "tzurot.runtime.identity",
    "configure_logging": "tzurot.runtime.logging",
    "run_service": "tzurot.runtime.main",
    "redact": "tzurot.runtime.redaction",
    "RunningServer": "tzurot.runtime.server",
    "ServiceRegistration": "tzurot.runtime.server",
    "create_server": "tzurot.runtime.server",
    "serve_until_signal": "tzurot.runtime.server",
    "wait_for_termination_signal": "tzurot.runtime.server",
    "SERVICE_IDENTITIES": "tzurot.runtime.tls",
    "TlsFiles": "tzurot.runtime.tls",
    "channel_credentials": "tzurot.runtime.tls",
    "generate_dev_pki": "tzurot.runtime.tls",
    "load_tls": "tzurot.runtime.tls",
    "server_credentials": "tzurot.runtime.tls",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tzurot.runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "SERVICE_IDENTITIES",
    "AlreadyExists",
    "AuthorizationPolicy",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "RunningServer",
    "ServiceRegistration",
    "ServiceSettings",
    "StartupError",
    "TlsFiles",
    "TzurotError",
    "Unauthenticated",
    "Unavailable",
    "channel_credentials",
    "configure_logging",
    "create_server",
    "current_caller",
    "current_request_id",
    "error_from_code",
    "from_rpc_error",
    "generate_dev_pki",
    "load_tls",
    "peer_identity",
    "redact",
    "run_service",
    "secret_values",
    "secure_channel",
    "serve_until_signal",
    "server_credentials",
    "to_status",
    "wait_for_termination_signal",
]
