"""Idempotent calls are retried across a restart, within a budget, and only for passing errors."""

from typing import Any

import grpc
import pytest

from tzurot.runtime.retry import retry_idempotent


def _error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")


async def test_unavailable_is_retried_until_the_call_succeeds() -> None:
    outcomes: list[Any] = [_error(grpc.StatusCode.UNAVAILABLE)] * 3 + ["ok"]
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return str(outcome)

    assert await retry_idempotent(call, what="t", first_pause=0.01) == "ok"
    assert calls == 4


async def test_a_lasting_failure_is_not_retried() -> None:
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        raise _error(grpc.StatusCode.FAILED_PRECONDITION)

    with pytest.raises(grpc.aio.AioRpcError):
        await retry_idempotent(call, what="t", first_pause=0.01)
    assert calls == 1


async def test_the_budget_ends_the_retries() -> None:
    async def call() -> str:
        raise _error(grpc.StatusCode.UNAVAILABLE)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await retry_idempotent(call, what="t", budget_seconds=0.2, first_pause=0.05)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
