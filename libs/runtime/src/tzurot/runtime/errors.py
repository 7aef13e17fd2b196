"""Typed domain errors that travel over gRPC as rich statuses (google.rpc details).

A servicer raises a `TzurotError`; the server interceptor turns it into a status with an
`ErrorInfo` (domain "tzurot", the reason, the metadata) plus `BadRequest` or `RetryInfo`
where they apply; a client turns the `AioRpcError` back into the same typed error with
`from_rpc_error`. Messages reach other services and users: never put a secret in one.

A service may attach a message of its own to an error (`TzurotError.attach`: inference's
`UsageSpent`, the estimate of a provider call billed before a helper RPC failed, since an
error has no body); it travels as one more detail, which a caller that does not know it
ignores, and a caller that does reads with `TzurotError.detail` (`from_rpc_error` keeps
every detail it does not decode itself). Details received are never sent on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import (  # type: ignore[import-untyped]  # googleapis-common-protos has no stubs
    error_details_pb2,
    status_pb2,
)
from grpc_status import rpc_status

ERROR_DOMAIN = "tzurot"
_DETAILS_KEY = "grpc-status-details-bin"
MAX_QUOTE_CHARS = 60
"""How much of a caller's input an error message quotes."""
MAX_ATTACHED_BYTES = 2048
"""All of an error's attached details together (`TzurotError.attach`), packed: one past the
budget is left out (logged), so the status stays well within gRPC's trailer limit."""
MAX_MESSAGE_CHARS = 1000
MAX_METADATA_CHARS = 200
"""A metadata key, and a value that does not fit whole in the budget, is cut to this."""
MAX_METADATA_BYTES = 2048
"""All of an error's metadata together (keys and values, UTF-8): no count of entries is
capped, so an entry added last (inference's `refused_key_providers`, a comma-separated list
kept whole) is never dropped for being the seventeenth; an entry past the budget is cut to
MAX_METADATA_CHARS, or left out and logged (its key, never its value)."""
# Status message and details travel in trailers, and gRPC refuses trailers over 8 KiB (the
# call then fails with a transport error instead of our status): everything is cut short.

PROVIDER_NOT_CONFIGURED = "PROVIDER_NOT_CONFIGURED"
"""Inference's FAILED_PRECONDITION reason for a built-in local provider the operator has not
given an address yet (its default is the pod's own loopback): the operator's to fix, so
gateway's fact extraction leaves the batch for a retry instead of finishing it."""


_M = TypeVar("_M", bound=Message)


def quoted(value: str, limit: int = MAX_QUOTE_CHARS) -> str:
    """`value` for an error message: its repr, cut to `limit` characters with an ellipsis."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class StartupError(Exception):
    """A configuration problem found at start; its message is one line for the operator."""


class TzurotError(Exception):
    """Base of every error a service reports to its callers."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    default_reason: ClassVar[str] = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        code: grpc.StatusCode | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})
        if code is not None:
            self.code = code
        self._attached: list[any_pb2.Any] = []
        self.received_details: tuple[any_pb2.Any, ...] = ()
        """The status details `from_rpc_error` did not decode itself (a service's own)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.reason}, {self.message!r})"

    def extra_details(self) -> list[any_pb2.Any]:
        """Details beyond ErrorInfo that this kind of error carries."""
        return []

    def attach(self, detail: Message) -> Self:
        """Sends `detail` with this error's status (a service's own message, packed as one
        more detail); `self`, to raise. One past MAX_ATTACHED_BYTES in all is left out."""
        packed = _pack(detail)
        used = sum(d.ByteSize() for d in self._attached)
        if used + packed.ByteSize() > MAX_ATTACHED_BYTES:
            _log_detail_dropped(packed.type_url)
        else:
            self._attached.append(packed)
        return self

    def attached_details(self) -> list[any_pb2.Any]:
        """What `attach` added, as to_status sends it."""
        return list(self._attached)

    def detail(self, message_type: type[_M]) -> _M | None:
        """The first received detail of `message_type` (a service's own, attached by the
        callee: see `attach`), or None: a callee that sends none (an older one)."""
        for packed in self.received_details:
            message = message_type()
            if packed.Unpack(message):  # False: a detail of another type
                return message
        return None


class InvalidArgument(TzurotError):
    """The request is malformed; `field` names the offending request field."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        field: str,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.field = field

    def extra_details(self) -> list[any_pb2.Any]:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=_cut(self.field, MAX_METADATA_CHARS),
            description=_cut(self.message, MAX_MESSAGE_CHARS),
        )
        return [_pack(error_details_pb2.BadRequest(field_violations=[violation]))]


class NotFound(TzurotError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(TzurotError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class PermissionDenied(TzurotError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(TzurotError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class FailedPrecondition(TzurotError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class ResourceExhausted(TzurotError):
    """A rate limit or quota; `retry_after_seconds` says when trying again makes sense."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float | None = None,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after_seconds = retry_after_seconds

    def extra_details(self) -> list[any_pb2.Any]:
        if self.retry_after_seconds is None:
            return []
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(self.retry_after_seconds * 1e9))
        return [_pack(error_details_pb2.RetryInfo(retry_delay=delay))]


class Unavailable(TzurotError):
    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class DeadlineExceeded(TzurotError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class Unimplemented(TzurotError):
    code = grpc.StatusCode.UNIMPLEMENTED
    default_reason = "NOT_IMPLEMENTED"


class Internal(TzurotError):
    code = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"


_BY_CODE: dict[grpc.StatusCode, type[TzurotError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        AlreadyExists,
        PermissionDenied,
        Unauthenticated,
        FailedPrecondition,
        Unavailable,
        DeadlineExceeded,
        Unimplemented,
        Internal,
    )
}


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(err: TzurotError) -> grpc.Status:
    """The rich gRPC status for `err`, ready for `context.abort_with_status`."""
    metadata = _bounded_metadata(err.metadata)
    info = error_details_pb2.ErrorInfo(
        reason=_cut(err.reason, MAX_METADATA_CHARS), domain=ERROR_DOMAIN, metadata=metadata
    )
    proto = status_pb2.Status(
        code=err.code.value[0],
        message=_cut(err.message, MAX_MESSAGE_CHARS),
        details=[_pack(info), *err.extra_details(), *err.attached_details()],
    )
    status: grpc.Status = rpc_status.to_status(proto)
    return status


def _bounded_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """`metadata` within MAX_METADATA_BYTES, in its order: each entry whole while it fits,
    else its value cut to MAX_METADATA_CHARS while that fits, else left out (logged)."""
    kept: dict[str, str] = {}
    left = MAX_METADATA_BYTES
    dropped: list[str] = []
    for raw_key, raw_value in metadata.items():
        key = _cut(raw_key, MAX_METADATA_CHARS)
        for value in (raw_value, _cut(raw_value, MAX_METADATA_CHARS)):
            size = len(key.encode()) + len(value.encode())
            if size <= left:
                kept[key], left = value, left - size
                break
        else:
            dropped.append(key)
    if dropped:
        _log_metadata_dropped(dropped)
    return kept


def _log_detail_dropped(type_url: str) -> None:
    import structlog  # noqa: PLC0415 - the CLI imports this module and rarely needs a log

    structlog.get_logger("tzurot.rpc").warning("rpc.error_detail_dropped", type_url=type_url)


def _log_metadata_dropped(keys: list[str]) -> None:
    import structlog  # noqa: PLC0415 - the CLI imports this module and rarely needs a log

    structlog.get_logger("tzurot.rpc").warning("rpc.error_metadata_dropped", keys=keys)


def error_from_code(
    code: grpc.StatusCode | str,
    message: str,
    *,
    reason: str | None = None,
    metadata: Mapping[str, str] | None = None,
    field: str = "",
    retry_after_seconds: float | None = None,
) -> TzurotError:
    """The typed error for a status code (or its name, e.g. "NOT_FOUND")."""
    status_code = code if isinstance(code, grpc.StatusCode) else _code_by_name(code)
    if status_code is grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(field, message, reason=reason, metadata=metadata)
    if status_code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ResourceExhausted(
            message, retry_after_seconds=retry_after_seconds, reason=reason, metadata=metadata
        )
    cls = _BY_CODE.get(status_code)
    if cls is None:
        return TzurotError(
            message, reason=reason or status_code.name, metadata=metadata, code=status_code
        )
    return cls(message, reason=reason, metadata=metadata)


def _code_by_name(name: str) -> grpc.StatusCode:
    try:
        return grpc.StatusCode[name.upper()]
    except KeyError:
        return grpc.StatusCode.UNKNOWN


def restarting_message(service: str) -> str:
    return f"the {service} is restarting; try again in a moment"


def from_rpc_error(exc: grpc.RpcError, *, service: str | None = None) -> TzurotError:
    """Decodes a failed call (aio or sync) back into the typed error the server raised.

    With `service` (the callee's name), a transport failure (UNAVAILABLE without our rich
    status: the service is down or restarting) becomes a message that says what to do; the
    raw error goes to the log with the request id.
    """
    code: grpc.StatusCode = exc.code()
    details: str = exc.details() or ""
    status = _rich_status(exc.trailing_metadata(), code)
    if status is None and service is not None and code is grpc.StatusCode.UNAVAILABLE:
        _log_transport_error(service, details)
        return Unavailable(
            restarting_message(service),
            reason="SERVICE_RESTARTING",
            metadata={"service": service},
        )
    if status is None:
        return error_from_code(code, details)
    reason: str | None = None
    metadata: dict[str, str] = {}
    field = ""
    retry_after: float | None = None
    received: list[any_pb2.Any] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason or None, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            field = bad.field_violations[0].field if bad.field_violations else ""
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
        else:
            received.append(detail)  # a service's own (TzurotError.attach)
    err = error_from_code(
        code,
        status.message or details,
        reason=reason,
        metadata=metadata,
        field=field,
        retry_after_seconds=retry_after,
    )
    err.received_details = tuple(received)
    return err


def is_unreachable(exc: grpc.RpcError) -> bool:
    """Whether a failed call never reached a service: UNAVAILABLE without our rich status
    (nothing listens there, a TLS handshake failed, the connection broke). A service that
    answered UNAVAILABLE itself (a provider down) sends its status."""
    return exc.code() is grpc.StatusCode.UNAVAILABLE and (
        _rich_status(exc.trailing_metadata(), grpc.StatusCode.UNAVAILABLE) is None
    )


def _log_transport_error(service: str, details: str) -> None:
    import structlog  # noqa: PLC0415 - the CLI imports this module and rarely needs a log

    from tzurot.runtime.identity import current_request_id  # noqa: PLC0415

    structlog.get_logger("tzurot.rpc").warning(
        "rpc.unavailable",
        service=service,
        detail=_cut(details, MAX_MESSAGE_CHARS),
        request_id=current_request_id(),
    )


def _rich_status(trailing: Iterable[Any] | None, code: grpc.StatusCode) -> Any:
    """The google.rpc.Status in the trailers, when present and consistent with `code`."""
    for key, value in trailing or ():  # (key, value) pairs: tuples or aio Metadata items
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            if status.code == code.value[0]:
                return status
    return None
