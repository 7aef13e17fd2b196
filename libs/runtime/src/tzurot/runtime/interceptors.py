"""The server-side call pipeline every RPC passes through.

In order: bind the request id (from `x-request-id` or fresh) and the caller identity (from
the peer certificate) in contextvars; authorize the method for that caller; refuse text no
service can store (NUL, `textcheck.py`) as INVALID_ARGUMENT naming the field; cap the run
time when the caller sent no deadline; turn a raised `TzurotError` into its rich status
and anything else into INTERNAL (logged, never echoed); write one access-log line and
report the outcome to the Prometheus metrics.

It wraps the handler's behaviour rather than `intercept_service` alone, because only the
behaviour runs in the RPC's own task with its `ServicerContext`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
import structlog
from google.protobuf.message import DecodeError, Message

from tzurot.runtime.authz import OPEN_SERVICES, AccessRules, service_of
from tzurot.runtime.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    TzurotError,
    Unimplemented,
    to_status,
)
from tzurot.runtime.identity import bind_call, peer_identity, request_id_from
from tzurot.runtime.metrics import observe_call
from tzurot.runtime.textcheck import check_storable

log = structlog.get_logger("tzurot.rpc")

if TYPE_CHECKING:  # the grpc classes are generic only in their stubs
    _Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
    _Continuation: TypeAlias = Callable[
        [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
    ]


@dataclass
class _Call:
    """What one RPC accumulates for its access-log line."""

    method: str
    context: _Context
    started: float = field(default_factory=time.perf_counter)
    caller: str | None = None
    request_id: str = ""
    code: grpc.StatusCode | None = None


class ServerCallInterceptor(grpc.aio.ServerInterceptor):
    """Identity, request id, authorization, time cap, error mapping and access log."""

    def __init__(self, *, rules: AccessRules, max_request_seconds: float) -> None:
        self._rules = rules
        self._max_request_seconds = max_request_seconds
        self._wrapped: dict[str, tuple[Any, grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self, continuation: _Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        # The registered handler is the same object on every call: wrap it once.
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        deserializer = _tolerant(handler.request_deserializer)
        serializer = handler.response_serializer
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method), deserializer, serializer
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method), deserializer, serializer
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, method), deserializer, serializer
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(handler.stream_stream, method), deserializer, serializer
            )
        return handler

    def _unary(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        async def run(request: Any, context: _Context) -> Any:
            call = _Call(method, context)
            with self._bound(call):
                try:
                    await self._authorize(call)
                    _check_request(request)
                    deadline = self._deadline(context)
                    return await _deadline_bounded(behavior(request, context), deadline)
                except BaseException as exc:
                    await self._fail(call, exc)
                    raise  # reached when _fail only recorded the outcome (abort, cancel)
                finally:
                    self._access_log(call)

        return run

    def _streaming(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behavior):
            # A coroutine that writes with context.write(): unary-shaped from our side.
            return self._unary(behavior, method)

        async def run(request: Any, context: _Context) -> AsyncIterator[Any]:
            call = _Call(method, context)
            with self._bound(call):
                try:
                    await self._authorize(call)
                    _check_request(request)
                    deadline = self._deadline(context)
                    responses = behavior(request, context)
                    try:
                        if deadline is None:  # the client's deadline: gRPC enforces it
                            async for item in responses:
                                yield item
                        else:
                            while True:
                                try:
                                    item = await _deadline_bounded(anext(responses), deadline)
                                except StopAsyncIteration:
                                    break
                                yield item  # outside the time cap: sending is gRPC's business
                    finally:
                        await responses.aclose()
                except BaseException as exc:
                    await self._fail(call, exc)
                    raise
                finally:
                    self._access_log(call)

        return run

    @contextlib.contextmanager
    def _bound(self, call: _Call) -> Iterator[None]:
        """Reads request id and caller, binding both for our code and for every log line."""
        call.request_id = request_id_from(call.context.invocation_metadata())
        call.caller = peer_identity(call.context)
        with (
            bind_call(call.caller, call.request_id),
            structlog.contextvars.bound_contextvars(request_id=call.request_id, caller=call.caller),
        ):
            yield

    async def _authorize(self, call: _Call) -> None:
        if call.caller is None:
            call.code = grpc.StatusCode.UNAUTHENTICATED
            log.warning("authz.unauthenticated", method=call.method)
            await call.context.abort(call.code, "no tzurot identity in the client certificate")
        if not self._rules.allows(call.method, call.caller):
            call.code = grpc.StatusCode.PERMISSION_DENIED
            log.warning("authz.denied", caller=call.caller, method=call.method)
            await call.context.abort(
                call.code, f"caller {call.caller!r} may not call {call.method}"
            )

    def _deadline(self, context: _Context) -> float | None:
        """Loop time by which a call must end when its client set no deadline (else None)."""
        if context.time_remaining() is not None:
            return None  # gRPC itself enforces the client's deadline
        return asyncio.get_running_loop().time() + self._max_request_seconds

    async def _fail(self, call: _Call, exc: BaseException) -> None:
        """Records the outcome of a failed call and aborts with the right status."""
        if isinstance(exc, grpc.aio.AbortError):
            call.code = call.code or call.context.code() or grpc.StatusCode.UNKNOWN
            return
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            call.code = grpc.StatusCode.CANCELLED
            return
        if not isinstance(exc, Exception):
            return
        if isinstance(exc, NotImplementedError):  # a generated base method not overridden yet
            exc = Unimplemented(f"{call.method} is not implemented yet")
        if not isinstance(exc, TzurotError):
            log.exception("rpc.unexpected_error", method=call.method)
            exc = Internal(f"internal error (request id {call.request_id})")
        call.code = exc.code
        await call.context.abort_with_status(to_status(exc))

    def _access_log(self, call: _Call) -> None:
        code = call.code or grpc.StatusCode.OK
        seconds = time.perf_counter() - call.started
        emit = log.debug if service_of(call.method) in OPEN_SERVICES else log.info
        # caller and request_id come from the contextvars `_bound` set.
        emit("rpc.served", method=call.method, code=code.name, duration_ms=round(seconds * 1000, 3))
        observe_call(call.method, code, seconds)


@dataclass(frozen=True)
class _Malformed:
    """What a request that does not parse becomes: refused as INVALID_ARGUMENT by the call,
    instead of gRPC's UNKNOWN from a deserializer that raised."""

    error: str


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except DecodeError as exc:
            return _Malformed(type(exc).__name__)

    return deserialize


def _check_request(request: Any) -> None:
    """A request that does not parse, or that holds text no service can store, is refused
    here, naming the field, before any use-case."""
    if isinstance(request, _Malformed):
        raise InvalidArgument("request", "the request is not a valid protobuf message")
    if isinstance(request, Message):  # a client-streaming call passes an iterator instead
        check_storable(request)


async def _deadline_bounded(step: Any, deadline: float | None) -> Any:
    """Awaits `step`, turning our own time cap into DEADLINE_EXCEEDED."""
    if not inspect.isawaitable(step):
        return step  # a plain function behaviour already ran
    if deadline is None:
        return await step
    cap = asyncio.timeout_at(deadline)
    try:
        async with cap:
            return await step
    except TimeoutError:
        if cap.expired():
            raise DeadlineExceeded(
                "the call ran past the server's time limit", reason="SERVER_TIME_LIMIT"
            ) from None
        raise
