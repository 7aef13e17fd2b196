"""mTLS client channels: pinned server identity, default deadline, request id, retries.

The channel checks the server's certificate against `server_identity` (not the address),
so a client that reaches the wrong service fails the handshake. Native gRPC retries, when
enabled for a service, retry UNAVAILABLE with backoff; for a server-streaming call gRPC
retries only until the first response arrives, so no reply is ever duplicated. What the
server did before it failed is done again, though: a method that pays for work before its
first response (or at all) must stay out of `retry_methods`. gRPC's transparent retries
(a request that never reached the server's code) apply to every method of a channel with
retries enabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import grpc

from tzurot.runtime.grpc_options import CLIENT_OPTIONS
from tzurot.runtime.identity import REQUEST_ID_HEADER, current_request_id, new_request_id
from tzurot.runtime.signals import threads_without_interrupts
from tzurot.runtime.tls import TlsFiles, channel_credentials


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
    call (a call can choose otherwise with its own `wait_for_ready=False`).

    The threads gRPC starts for a channel leave SIGINT and SIGTERM to the main thread
    (`tzurot.runtime.signals`)."""
    options: list[tuple[str, str | int]] = [
        *CLIENT_OPTIONS,
        ("grpc.ssl_target_name_override", server_identity),
        ("grpc.enable_retries", 1 if retry_service else 0),
    ]
    if retry_service is not None:
        config = retry_service_config(retry_service, max_attempts, retry_methods)
        options.append(("grpc.service_config", config))
    with threads_without_interrupts():
        channel = grpc.aio.secure_channel(target, channel_credentials(tls), options=options)
    return DefaultsChannel(channel, _Defaults(default_timeout, wait_for_ready))


def connect_channels(channels: Iterable[grpc.aio.Channel]) -> None:
    """Starts each channel's connection (TLS handshake) now rather than on its first call;
    returns at once (a peer that is down does not delay the caller: it is retried in the
    background, as any call would)."""
    for made in channels:
        made.get_state(try_to_connect=True)


async def wait_connected(channel: grpc.aio.Channel, within: float) -> None:
    """Waits at most `within` seconds for a channel that is not connected (still connecting,
    or in reconnect backoff: its peer started after it, or restarted); then the call goes
    ahead either way, failing UNAVAILABLE if the peer is still away. For calls whose caller
    can do without the peer (a degraded answer), where `wait_for_ready` would wait out the
    whole deadline."""
    if channel.get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            await channel.channel_ready()


class _Defaults:
    """What every call of one channel gets when its caller set none: `x-request-id` (the
    served call's, else a fresh one), `wait_for_ready` and, for calls with one response,
    the default deadline. A call streaming its responses keeps the deadline its caller
    chose, or none: such streams (an answer, a re-wrap) may legitimately outlast the default.

    Applied where the call is made (no grpc.aio client interceptor: grpc runs each
    intercepted call through an extra task and wraps a stream's every message)."""

    __slots__ = ("timeout", "wait_for_ready")

    def __init__(self, default_timeout: float, wait_for_ready: bool) -> None:
        self.timeout = default_timeout
        self.wait_for_ready = wait_for_ready or None

    def metadata(self, given: Any) -> tuple[tuple[str, str | bytes], ...]:
        """The caller's metadata with `x-request-id` added unless it carries one."""
        if given:
            pairs = tuple(given)
            if any(key == REQUEST_ID_HEADER for key, _ in pairs):
                return pairs
            return (*pairs, (REQUEST_ID_HEADER, current_request_id() or new_request_id()))
        return ((REQUEST_ID_HEADER, current_request_id() or new_request_id()),)


class DefaultsChannel(grpc.aio.Channel):
    """A channel whose multi-callables add our call defaults (`_Defaults`) to every call."""

    def __init__(self, channel: grpc.aio.Channel, defaults: _Defaults) -> None:
        self._channel = channel
        self._calls: Any = channel  # grpc's stubs omit `_registered_method`, which it takes
        self._defaults = defaults

    async def __aenter__(self) -> DefaultsChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._channel.close(None)

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._channel.channel_ready()

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        inner = self._calls.unary_unary(
            method, request_serializer, response_deserializer, _registered_method
        )
        return _UnaryUnary(inner, self._defaults)

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        inner = self._calls.unary_stream(
            method, request_serializer, response_deserializer, _registered_method
        )
        return _Streaming(inner, self._defaults)

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        inner = self._calls.stream_unary(
            method, request_serializer, response_deserializer, _registered_method
        )
        return _UnaryUnary(inner, self._defaults)

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        inner = self._calls.stream_stream(
            method, request_serializer, response_deserializer, _registered_method
        )
        return _Streaming(inner, self._defaults)


class _UnaryUnary:
    """A multi-callable with one response (unary or client-streaming request): the default
    deadline applies."""

    __slots__ = ("_defaults", "_inner")

    def __init__(self, inner: Any, defaults: _Defaults) -> None:
        self._inner = inner
        self._defaults = defaults

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        defaults = self._defaults
        return self._inner(
            request,
            timeout=defaults.timeout if timeout is None else timeout,
            metadata=defaults.metadata(metadata),
            credentials=credentials,
            wait_for_ready=defaults.wait_for_ready if wait_for_ready is None else wait_for_ready,
            compression=compression,
        )


class _Streaming:
    """A multi-callable streaming its responses: no default deadline."""

    __slots__ = ("_defaults", "_inner")

    def __init__(self, inner: Any, defaults: _Defaults) -> None:
        self._inner = inner
        self._defaults = defaults

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        defaults = self._defaults
        return self._inner(
            request,
            timeout=timeout,
            metadata=defaults.metadata(metadata),
            credentials=credentials,
            wait_for_ready=defaults.wait_for_ready if wait_for_ready is None else wait_for_ready,
            compression=compression,
        )
