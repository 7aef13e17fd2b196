"""Shared runtime of every Tzurot service: settings, logging, errors, mTLS gRPC plumbing.

Import the modules for the full API; the names most services need are re-exported here.
"""

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
