"""A helper RPC (ExtractFacts) whose provider call failed once its request went out, over real
mTLS gRPC with the fake provider: the call may have been billed, and an error has no body, so
its estimate rides in the status details (inference's UsageSpent, failed, each Usage
estimated) beside ErrorInfo, for the caller to record. A call refused, or never sent, carries
none."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from pydantic import SecretStr

from tzurot.inference.app import InferenceApp, start_inference
from tzurot.inference.config import InferenceSettings
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import TzurotError, from_rpc_error
from tzurot.testing.channels import channels_to
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

from .conftest import Backends
from .cut_off_support import words

pytestmark = pytest.mark.contract

KEY = "plantedRPCCUTzq7Wm3Xv9Rt2Lp8"
USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"
FACTS = '{"facts": [{"text": "Ann lives in Oslo."}, {"text": "Ann has a cat."}]}'

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    Stub = inf_grpc.InferenceServiceAsyncStub

Connect = Callable[..., Awaitable["Stub"]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={KEY}, any_model=True) as provider:
        yield provider


@pytest.fixture
async def inference(pki: Path, backends: Backends, fake: FakeProvider) -> AsyncIterator[Connect]:
    """Starts inference (gateway's stub to it) on the fake provider."""
    backends.vault.keys[(USER, "fakeai")] = KEY
    apps: list[InferenceApp] = []
    async with channels_to("inference", pki) as open_channel:

        async def connect(**overrides: object) -> Stub:
            fields: dict[str, object] = {
                "listen": "127.0.0.1:0",
                "tls_dir": pki / "inference",
                "memory_addr": f"127.0.0.1:{backends.memory_port}",
                "keyvault_addr": f"127.0.0.1:{backends.vault_port}",
                "providers": {"fakeai": fake.base_url},
                "system_keys": {"fakeai": SecretStr("plantedSYSTEMunused")},
                "provider_max_retries": 1,
                "provider_timeout_seconds": 10.0,
                "grace_seconds": 0.5,
                **overrides,
            }
            app = await start_inference(InferenceSettings.model_validate(fields))
            apps.append(app)
            return inf_grpc.InferenceServiceStub(open_channel(app.port, "gateway"))

        try:
            yield connect
        finally:
            for app in apps:
                await app.stop()


def facts_request() -> inf.ExtractFactsRequest:
    return inf.ExtractFactsRequest(
        user_id=USER,
        config=common.ResolvedLlmConfig(
            config=common.LlmConfig(provider="fakeai", model="fake/echo"),
            source=common.CONFIG_SOURCE_GLOBAL,
        ),
        user_name="Ann",
        personality_name="Lilith",
        turns=[
            common.Turn(role=common.ROLE_USER, author_name="Ann", content="I moved to Oslo."),
            common.Turn(role=common.ROLE_ASSISTANT, author_name="Lilith", content="Cold."),
        ],
    )


async def failed(call: Awaitable[object]) -> TzurotError:
    """The call's status as the gateway's client decodes it."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return from_rpc_error(caught.value, service="inference")


def the_estimate(err: TzurotError) -> common.Usage:
    spent = err.detail(inf.UsageSpent)
    assert spent is not None, "no usage in the error's details"
    assert spent.failed
    (usage,) = spent.usage
    assert usage.estimated
    assert usage.failed
    return usage


@pytest.mark.parametrize("fault", ["drop_after_chunks", "cut_after_chunks", "error_after_chunks"])
async def test_extract_facts_broken_mid_stream_carries_its_estimate_in_the_error(
    inference: Connect, fake: FakeProvider, fault: str
) -> None:
    fake.enqueue(FACTS)
    setattr(fake, fault, 3)
    err = await failed((await inference()).ExtractFacts(facts_request(), timeout=10.0))
    assert err.reason == "PROVIDER_UNAVAILABLE"
    assert len(fake.chat_requests()) == 1  # begun: never asked again
    usage = the_estimate(err)
    assert (usage.request_type, usage.provider, usage.model) == (
        "fact_extraction",
        "fakeai",
        "fake/echo",
    )
    assert usage.input_tokens > 20  # the extraction's instructions and the turns
    assert usage.output_tokens == TokenCounter("fake/echo").count(words(FACTS, 3))


async def test_extract_facts_unanswered_in_time_carries_its_prompt(
    inference: Connect, fake: FakeProvider
) -> None:
    """The request went out and no answer came within the provider's timeout: the
    provider may be at work, and billing (NoAnswerInTime)."""
    fake.stall_next(3.0)
    stub = await inference(provider_timeout_seconds=0.5)
    err = await failed(stub.ExtractFacts(facts_request(), timeout=10.0))
    assert err.reason == "PROVIDER_UNAVAILABLE"
    usage = the_estimate(err)
    assert usage.request_type == "fact_extraction"
    assert usage.input_tokens > 20
    assert usage.output_tokens == 0


async def test_extract_facts_refused_or_never_begun_carries_no_usage(
    inference: Connect, fake: FakeProvider
) -> None:
    stub = await inference()
    fake.valid_keys.clear()  # a 401: nobody billed it
    err = await failed(stub.ExtractFacts(facts_request(), timeout=10.0))
    assert err.reason == "INVALID_API_KEY"
    assert err.detail(inf.UsageSpent) is None
    fake.valid_keys.add(KEY)
    fake.cut_after_chunks = 0  # the body ends before any answer: asked again, then given up
    err = await failed(stub.ExtractFacts(facts_request(), timeout=10.0))
    assert err.reason == "PROVIDER_UNAVAILABLE"
    assert err.detail(inf.UsageSpent) is None
