"""The server-side call pipeline every RPC passes through.

In order: bind the request id (from `x-request-id` or fresh) and the caller identity (from
the peer certificate) in contextvars; authorize the method for that caller; refuse text no
service can store (NUL, `textcheck.py`) as INVALID_ARGUMENT naming the field; cap the run
time when the caller sent no deadline; turn a raised `TzurotError` into its rich status
and anything else into INTERNAL (logged, never echoed); write one access-log line and
report the outcome to the Prometheus metrics.

It wraps each handler's behaviour when the handler is registered (`PipelinedServer`), not
in a grpc.aio server interceptor: the behaviour runs in the RPC's own task with its
`ServicerContext`, and no interceptor chain runs per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
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


@dataclass
class _Call:
    """What one RPC accumulates for its access-log line."""

    method: str
    context: _Context
    started: float = field(default_factory=time.perf_counter)
    caller: str | None = None
    request_id: str = ""
    code: grpc.StatusCode | None = None


class ServerCallPipeline:
    """Identity, request id, authorization, time cap, error mapping and access log.

    Not a grpc.aio server interceptor (grpc would run an interceptor chain of coroutines
    and a handler lookup on every call): each method handler is wrapped once, when it is
    registered (`PipelinedServer`), or on its first call for a generic handler."""

    def __init__(self, *, rules: AccessRules, max_request_seconds: float) -> None:
        self._rules = rules
        self._max_request_seconds = max_request_seconds

    def wrap_generic(self, inner: grpc.GenericRpcHandler) -> grpc.GenericRpcHandler:
        """`inner` with every handler it finds wrapped (each once)."""
        return _WrappedGeneric(inner, self)

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """The handler of the full `method` name run inside the pipeline."""
        return self._wrap(handler, method)

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


class _WrappedGeneric(grpc.GenericRpcHandler):
    """A generic handler whose handlers run inside the pipeline (each wrapped once: a
    generic handler returns the same handler object for a method on every call)."""

    def __init__(self, inner: grpc.GenericRpcHandler, pipeline: ServerCallPipeline) -> None:
        self._inner = inner
        self._pipeline = pipeline
        self._wrapped: dict[str, tuple[Any, grpc.RpcMethodHandler[Any, Any]]] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._pipeline.wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class PipelinedServer(grpc.aio.Server):
    """What servicers are registered on: the real server, every handler added through it
    wrapped by the pipeline (generated `add_*_to_server`, health and reflection alike).

    A generated `add_*_to_server` adds its handlers twice: as a generic handler, then as
    grpc's registered methods. grpc.aio keeps a pending request for each registered method
    and, for every call the server takes, waits on all of them (`asyncio.wait`) and re-arms
    one: ~1,900 Python calls and ~0.15 ms of CPU a turn over the four services (gateway has
    85 methods; issue 16). So methods a generic handler already serves with the same
    handler are not registered again: grpc picks the same handler either way."""

    def __init__(self, server: grpc.aio.Server, pipeline: ServerCallPipeline) -> None:
        self._server = server
        self._pipeline = pipeline
        self._generic: list[grpc.GenericRpcHandler] = []
        self._registered: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Iterable[grpc.GenericRpcHandler]
    ) -> None:
        handlers = list(generic_rpc_handlers)
        self._generic.extend(handlers)
        wrap = self._pipeline.wrap_generic
        self._server.add_generic_rpc_handlers([wrap(h) for h in handlers])

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        named = {f"/{service_name}/{name}": h for name, h in method_handlers.items()}
        if all(self._served_by(method) is handler for method, handler in named.items()):
            return  # grpc would pick these very handlers already
        self._registered.update(named)
        wrap = self._pipeline.wrap
        self._server.add_registered_method_handlers(
            service_name,
            {name: wrap(h, f"/{service_name}/{name}") for name, h in method_handlers.items()},
        )

    def _served_by(self, method: str) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The handler grpc picks for `method` now: a registered one, else the first generic
        handler's that serves it."""
        registered = self._registered.get(method)
        if registered is not None:
            return registered
        details = _MethodOnly(method)
        for generic in self._generic:
            handler = generic.service(details)
            if handler is not None:
                return handler
        return None

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._server.add_secure_port(address, server_credentials)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float | None) -> None:
        await self._server.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109  # grpc.aio.Server's signature
        return await self._server.wait_for_termination(timeout)


class _MethodOnly(grpc.HandlerCallDetails):
    """What a generic handler is asked about a method (no call: no metadata)."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


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
