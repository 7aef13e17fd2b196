"""The authorization matrix check shared by every service's conformance module."""

from __future__ import annotations

import asyncio

import grpc

from tzurot.testing.conformance.rules import IDENTITIES, allowed_callers
from tzurot.testing.conformance.target import Target, empty_request, methods

# What an allowed caller must never get for a well-formed (if empty) request.
_NOT_FOR_ALLOWED = {
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
}


async def _outcome(target: Target, identity: str, method: object) -> tuple[grpc.StatusCode, str]:
    call = target.call(identity, method)  # type: ignore[arg-type]
    request = empty_request(method)  # type: ignore[arg-type]
    if getattr(method, "client_streaming", False):
        request = iter([request])  # type: ignore[assignment]  # one (empty) message
    try:
        if getattr(method, "server_streaming", False):
            stream = call(request, timeout=20)
            async for _ in stream:
                break
            stream.cancel()
        else:
            await call(request, timeout=20)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def check_matrix(target: Target) -> list[str]:
    """Calls every method of the contract as every identity; returns the violations."""
    cases = [(identity, method) for method in methods(target.service) for identity in IDENTITIES]
    outcomes = await asyncio.gather(*(_outcome(target, i, m) for i, m in cases))
    problems = []
    for (identity, method), (code, details) in zip(cases, outcomes, strict=True):
        allowed = identity in allowed_callers(target.service, method)
        name = f"{method.name} as {identity}"
        if not allowed and code is not grpc.StatusCode.PERMISSION_DENIED:
            problems.append(f"{name}: expected PERMISSION_DENIED, got {code.name} {details!r}")
        elif not allowed and (identity not in details or method.name not in details):
            problems.append(f"{name}: the refusal should name the caller and method: {details!r}")
        elif allowed and code in _NOT_FOR_ALLOWED:
            problems.append(f"{name}: allowed, but got {code.name} {details!r}")
    return problems
