"""ExtractFacts announces its prompt (initial metadata `tzurot-prompt-tokens`) only once the
provider accepted the request (its 200's headers), over real mTLS gRPC with the fake
provider: a call cut while its first attempt waits out a 429 announced nothing, so the
gateway counts nothing for it; one answered after that wait announced once, with the
prompt's tokens (review c7a M4)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tzurot.gateway.cancelled_usage import cut_helper_call, with_announced_prompt
from tzurot.inference.app import InferenceApp, start_inference
from tzurot.inference.broken_off import prompt_tokens
from tzurot.inference.config import InferenceSettings
from tzurot.inference.server import PROMPT_TOKENS_METADATA
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import from_rpc_error
from tzurot.testing.fake_provider import FakeProvider

from .test_helper_rpc_cut_off import FACTS, Connect, facts_request
from .test_helper_rpc_cut_off import fake as fake  # noqa: PLC0414  # the fixtures
from .test_helper_rpc_cut_off import inference as inference  # noqa: PLC0414

pytestmark = pytest.mark.contract

connect_module = "tests.contract.inference.test_helper_rpc_cut_off"

RETRY_AFTER = 4.0
"""The 429's wait: shorter than the call's time (so inference waits it out), long enough to
cut the call during it on a loaded host."""


def announced(metadata: object) -> list[str]:
    return [v for k, v in (metadata or ()) if k == PROMPT_TOKENS_METADATA]  # type: ignore[attr-defined]  # grpc's Metadata iterates as pairs


async def first_request(fake: FakeProvider) -> None:
    for _ in range(500):
        if fake.chat_requests():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the provider was never asked")


async def test_a_call_cut_while_waiting_out_a_429_announced_nothing(
    inference: Connect,  # the fixture
    fake: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inference restarting (a deploy) while the first attempt waits out its 429: the call
    ends with no status (SERVICE_RESTARTING), which the gateway counts as cut; nothing was
    announced, so nothing is counted."""
    apps: list[InferenceApp] = []
    started = start_inference

    async def kept(settings: InferenceSettings) -> InferenceApp:
        apps.append(await started(settings))
        return apps[-1]

    monkeypatch.setattr(f"{connect_module}.start_inference", kept)
    fake.fail_next(429, retry_after=RETRY_AFTER)
    stub = await inference(grace_seconds=0.1)
    call = stub.ExtractFacts(facts_request(), timeout=30.0)
    await first_request(fake)  # refused: inference now waits RETRY_AFTER
    await asyncio.sleep(0.3)  # an announcement made before the request is out by now
    (app,) = apps
    await app.stop()  # mid-wait
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    cut = with_announced_prompt(
        from_rpc_error(caught.value, service="inference"), caught.value.initial_metadata()
    )
    assert cut.reason == "SERVICE_RESTARTING" or cut.code in (
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ), cut  # a cut the gateway counts the announced prompt of
    assert announced(caught.value.initial_metadata()) == []
    assert cut_helper_call(cut, "fakeai", "fake/echo") is None  # no row
    assert len(fake.chat_requests()) == 1


async def test_a_call_answered_after_a_429_announced_its_prompt_once(
    inference: Connect,
    fake: FakeProvider,
) -> None:
    fake.fail_next(429, retry_after=0.5)
    fake.enqueue(FACTS)
    stub = await inference()
    call = stub.ExtractFacts(facts_request(), timeout=30.0)
    reply = await call
    assert len(reply.facts) == 2
    first, second = fake.chat_requests()
    tokens = prompt_tokens(second.body["messages"], TokenCounter("fake/echo"))
    assert announced(await call.initial_metadata()) == [str(tokens)]
    assert first.body["messages"] == second.body["messages"]
