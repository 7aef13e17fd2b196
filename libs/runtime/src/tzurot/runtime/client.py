"""mTLS client channels: pinned server identity, default deadline, request id, retries.

The channel checks the server's certificate against `server_identity` (not the address),
so a client that reaches the wrong service fails the handshake. Native gRPC retries, when
enabled for a service, retry UNAVAILABLE with backoff; for a server-streaming call gRPC
retries only until the first response arrives, so no reply is ever duplicated.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc

from tzurot.runtime.grpc_options import CLIENT_OPTIONS
from tzurot.runtime.identity import REQUEST_ID_HEADER, current_request_id, new_request_id
from tzurot.runtime.tls import TlsFiles, channel_credentials

_Continuation = Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]]


def retry_service_config(service: str, max_attempts: int, methods: Sequence[str] = ()) -> str:
    """gRPC service config JSON retrying UNAVAILABLE for `methods` of `service` (every method
    when none is named)."""
    names = [{"service": service, "method": m} for m in methods] or [{"service": service}]
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": names,
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": "0.2s",
                        "maxBackoff": "2s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


def secure_channel(
    target: str,
    tls: TlsFiles,
    *,
    server_identity: str,
    default_timeout: float,
    retry_service: str | None = None,
    max_attempts: int = 3,
    retry_methods: Sequence[str] = (),
    wait_for_ready: bool = False,
) -> grpc.aio.Channel:
    """An mTLS channel to `target` that only accepts the certificate of `server_identity`.

    `retry_service` turns on gRPC's retry of UNAVAILABLE for its `retry_methods` (all of its
    methods when none is named). `wait_for_ready`: a call made while the channel is still
    connecting (or in reconnect backoff) waits for the connection, within its deadline,
    instead of failing UNAVAILABLE at once; no request is sent twice, so this is safe for any
    call (a call can choose otherwise with its own `wait_for_ready=False`)."""
    options: list[tuple[str, str | int]] = [
        *CLIENT_OPTIONS,
        ("grpc.ssl_target_name_override", server_identity),
        ("grpc.enable_retries", 1 if retry_service else 0),
    ]
    if retry_service is not None:
        config = retry_service_config(retry_service, max_attempts, retry_methods)
        options.append(("grpc.service_config", config))
    return grpc.aio.secure_channel(
        target,
        channel_credentials(tls),
        options=options,
        interceptors=call_defaults(default_timeout, wait_for_ready=wait_for_ready),
    )


def connect_channels(channels: Iterable[grpc.aio.Channel]) -> None:
    """Starts each channel's connection (TLS handshake) now rather than on its first call;
    returns at once (a peer that is down does not delay the caller: it is retried in the
    background, as any call would)."""
    for made in channels:
        made.get_state(try_to_connect=True)


def call_defaults(
    default_timeout: float, *, wait_for_ready: bool = False
) -> list[grpc.aio.ClientInterceptor]:
    """The interceptors adding our call defaults, one per call kind: grpc.aio files an
    interceptor under the first kind it implements only, so one object implementing all four
    would never see a streaming call."""
    kinds = (_UnaryUnaryDefaults, _UnaryStreamDefaults, _StreamUnaryDefaults, _StreamStreamDefaults)
    return [kind(default_timeout, wait_for_ready=wait_for_ready) for kind in kinds]


class _CallDefaults:
    """Propagates `x-request-id` and, when the caller set none, adds `wait_for_ready` and
    (to calls with one response) the default deadline. A call streaming its responses keeps
    the deadline its caller chose, or none: such streams (an answer, a re-wrap) may
    legitimately outlast the default."""

    def __init__(self, default_timeout: float, *, wait_for_ready: bool = False) -> None:
        self._default_timeout = default_timeout
        self._wait_for_ready = wait_for_ready or None

    def _details(
        self, details: grpc.aio.ClientCallDetails, *, default_deadline: bool = True
    ) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if metadata.get(REQUEST_ID_HEADER) is None:
            metadata.add(REQUEST_ID_HEADER, current_request_id() or new_request_id())
        timeout = details.timeout
        if timeout is None and default_deadline:
            timeout = self._default_timeout
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=(
                self._wait_for_ready if details.wait_for_ready is None else details.wait_for_ready
            ),
        )


class _UnaryUnaryDefaults(_CallDefaults, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: _Continuation,
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStreamDefaults(_CallDefaults, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self,
        continuation: _Continuation,
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        details = self._details(client_call_details, default_deadline=False)
        return await continuation(details, request)


class _StreamUnaryDefaults(_CallDefaults, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: _Continuation,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStreamDefaults(_CallDefaults, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: _Continuation,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        details = self._details(client_call_details, default_deadline=False)
        return await continuation(details, request_iterator)
