"""The reference authorization matrix: which mTLS identity may call which method.

Read from the Python services' own policies (and gateway's allowed callers), so the matrix
the conformance suite checks is the one the reference enforces; a method that a policy does
not list falls to the service's default (nobody, except on gateway: bot, cli, edge).
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import descriptor

from tzurot.gateway.config import GatewaySettings
from tzurot.inference.app import AUTHORIZATION as INFERENCE
from tzurot.keyvault.app import AUTHORIZATION as KEYVAULT
from tzurot.memory.app import AUTHORIZATION as MEMORY
from tzurot.runtime.tls import SERVICE_IDENTITIES

IDENTITIES = SERVICE_IDENTITIES

_POLICIES: Mapping[str, Mapping[str, frozenset[str]]] = {
    "gateway": {},
    "inference": INFERENCE,
    "memory": MEMORY,
    "keyvault": KEYVAULT,
}
_DEFAULTS: Mapping[str, frozenset[str]] = {
    "gateway": GatewaySettings.model_fields["allowed_callers"].default,
    "inference": frozenset(),
    "memory": frozenset(),
    "keyvault": frozenset(),
}


def allowed_callers(service: str, method: descriptor.MethodDescriptor) -> frozenset[str]:
    """Who may call `method` of `service` ("keyvault", ...)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    return _POLICIES[service].get(path, _DEFAULTS[service])
