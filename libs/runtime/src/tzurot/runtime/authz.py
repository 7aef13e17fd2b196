"""Per-method authorization by caller identity (the SPIFFE name in the peer certificate)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

AuthorizationPolicy = Mapping[str, frozenset[str]]
"""Full method ("/tzurot.v1.KeyVaultService/Decrypt") -> identities allowed to call it."""

OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
"""Services any authenticated peer may call (probes, grpcurl)."""


def service_of(method: str) -> str:
    """ "/pkg.Service/Method" -> "pkg.Service"."""
    return method.lstrip("/").partition("/")[0]


@dataclass(frozen=True)
class AccessRules:
    """Who may call what: explicit per-method sets, else `default_allowed` (None = anyone)."""

    authorization: AuthorizationPolicy | None = None
    default_allowed: frozenset[str] | None = None

    def allows(self, method: str, caller: str) -> bool:
        """Whether the authenticated `caller` may call the full `method` name."""
        if service_of(method) in OPEN_SERVICES:
            return True
        if self.authorization is not None and method in self.authorization:
            return caller in self.authorization[method]
        return self.default_allowed is None or caller in self.default_allowed

    def unknown_services(self, registered: frozenset[str]) -> list[str]:
        """Policy entries naming a service that is not registered (a typo, surely)."""
        return sorted(
            method
            for method in self.authorization or {}
            if not method.startswith("/") or service_of(method) not in registered
        )
