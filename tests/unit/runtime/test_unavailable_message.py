"""A service that is down reads as "restarting; try again", not as a transport error."""

import grpc
import pytest

from tzurot.runtime.errors import Unavailable, from_rpc_error, to_status


def _raw(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


def test_a_transport_failure_names_the_service_and_what_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:15053"
    err = from_rpc_error(_raw(grpc.StatusCode.UNAVAILABLE, raw), service="memory")
    assert isinstance(err, Unavailable)
    assert err.message == "the memory is restarting; try again in a moment"
    assert err.reason == "SERVICE_RESTARTING"
    assert "failed to connect" in capsys.readouterr().out  # the raw error is logged


def test_a_typed_unavailable_keeps_its_own_message() -> None:
    status = to_status(Unavailable("openrouter is unreachable", reason="PROVIDER_DOWN"))
    exc = grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )
    err = from_rpc_error(exc, service="inference")
    assert err.message == "openrouter is unreachable"
    assert err.reason == "PROVIDER_DOWN"


def test_other_codes_are_unchanged() -> None:
    err = from_rpc_error(_raw(grpc.StatusCode.NOT_FOUND, "nope"), service="memory")
    assert err.message == "nope"
