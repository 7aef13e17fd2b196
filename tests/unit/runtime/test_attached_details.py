"""A service's own message attached to an error (`TzurotError.attach`: inference's UsageSpent
on a helper RPC that failed once its provider call went out) travels as one more status
detail: the caller reads it with `detail`, the error's code, reason, metadata and retry
delay arrive as before (a caller that knows no such detail ignores it), and an error sent on
does not carry what it received. Past the byte budget a detail is left out and logged."""

import grpc
import pytest

from tzurot.runtime.errors import (
    MAX_ATTACHED_BYTES,
    ResourceExhausted,
    TzurotError,
    Unavailable,
    from_rpc_error,
    to_status,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf


def _round_trip(err: TzurotError) -> TzurotError:
    status = to_status(err)
    exc = grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )
    return from_rpc_error(exc, service="inference")


def _spent(tokens: int = 120) -> inf.UsageSpent:
    usage = common.Usage(
        provider="openrouter",
        model="fake/echo",
        input_tokens=tokens,
        output_tokens=7,
        request_type="fact_extraction",
        estimated=True,
        failed=True,
    )
    return inf.UsageSpent(usage=[usage], failed=True)


def test_an_attached_detail_arrives_beside_the_errors_own() -> None:
    sent = ResourceExhausted(
        "slow down", retry_after_seconds=2.5, reason="RATE_LIMITED", metadata={"p": "x"}
    )
    err = _round_trip(sent.attach(_spent()))
    assert isinstance(err, ResourceExhausted)
    assert (err.reason, err.metadata, err.retry_after_seconds) == (
        "RATE_LIMITED",
        {"p": "x"},
        2.5,
    )
    assert err.detail(inf.UsageSpent) == _spent()
    assert err.detail(inf.KeyRefused) is None  # another type: not this one


def test_an_error_without_one_has_none() -> None:
    assert _round_trip(Unavailable("down")).detail(inf.UsageSpent) is None


def test_what_an_error_received_is_not_sent_on() -> None:
    received = _round_trip(Unavailable("down").attach(_spent()))
    assert _round_trip(received).detail(inf.UsageSpent) is None


def test_past_the_budget_a_detail_is_left_out_and_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    big = inf.UsageSpent(usage=[_spent().usage[0]] * 60, failed=True)
    assert big.ByteSize() > MAX_ATTACHED_BYTES
    err = _round_trip(Unavailable("down").attach(_spent(1)).attach(big))
    assert err.detail(inf.UsageSpent) == _spent(1)  # the first, within the budget
    assert len(err.received_details) == 1
    assert "rpc.error_detail_dropped" in capsys.readouterr().out
