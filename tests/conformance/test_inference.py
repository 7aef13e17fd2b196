"""InferenceService conformance: only gateway may call it; every method is implemented.

Runs against any implementation (see tests/conformance/conftest.py and docs/CONTRACTS.md).
"""

from __future__ import annotations

import grpc
import pytest

from tzurot.testing.conformance.authz import check_matrix
from tzurot.testing.conformance.target import Target
from tzurot.v1 import inference_pb2 as inf

SERVICE = "inference"
pytestmark = [pytest.mark.conformance, pytest.mark.asyncio(loop_scope="session")]


async def test_authorization_matrix(target: Target) -> None:
    assert await check_matrix(target) == []


async def test_a_reply_without_a_personality_is_invalid_argument(target: Target) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in target.stub("gateway").GenerateReply(inf.GenerateReplyRequest()):
            pass
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
