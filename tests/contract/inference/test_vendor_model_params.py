"""What dialects.py builds is accepted by a fake as strict as the vendor (review M1, M2):
every thinking level on each Gemini 2.5 model (budgets within its range), and an OpenAI
reasoning model's parameters on an operator's provider (`TZUROT_PROVIDERS`, dialect
"generic"). Through LlmClient and the real `openai` SDK over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from tzurot.inference.dialects import build_call, helper_call
from tzurot.inference.domain import Completion, StreamEvent
from tzurot.inference.llm import LlmClient
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider
from tzurot.testing.fake_provider import FakeProvider

pytestmark = pytest.mark.contract

KEY = "plantedGOODzq7Wm3Xv9Rt2Lp8"
MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "hello there"},
]
GEMINI = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite")
REASONING = ("o1", "o3", "o4-mini", "gpt-5", "gpt-5-mini")


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={KEY}, models=(*GEMINI, *REASONING)) as provider:
        yield provider


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    client = LlmClient(timeout_seconds=10.0)
    try:
        yield client
    finally:
        await client.aclose()


async def answer(
    llm: LlmClient, target: Provider, model: str, parameters: dict[str, Any]
) -> list[StreamEvent]:
    call = build_call(
        target.name,
        model,
        parse_advanced_parameters(parameters),
        MESSAGES,
        base_url=target.base_url,
    )
    return [
        event async for event in llm.stream_chat(target, SecretStr(KEY), model=model, call=call)
    ]


@pytest.mark.parametrize("model", GEMINI)
@pytest.mark.parametrize("level", ["off", "minimal", "low", "medium", "high", "max"])
async def test_every_thinking_level_is_a_budget_the_gemini_model_accepts(
    fake: FakeProvider, llm: LlmClient, model: str, level: str
) -> None:
    events = await answer(llm, Provider("gemini", fake.base_url), model, {"thinking_level": level})
    assert isinstance(events[-1], Completion)
    (request,) = fake.chat_requests()
    assert "thinking_budget" in request.body["extra_body"]["google"]["thinking_config"]


@pytest.mark.parametrize("model", REASONING)
async def test_a_reasoning_model_on_an_operators_provider_is_sent_what_it_takes(
    fake: FakeProvider, llm: LlmClient, model: str
) -> None:
    parameters = {"max_tokens": 400, "temperature": 0.7, "top_p": 0.9, "stop": ["\n\n"]}
    events = await answer(llm, Provider("my-azure", fake.base_url), model, parameters)
    assert isinstance(events[-1], Completion)
    (request,) = fake.chat_requests()
    assert request.body["max_completion_tokens"] == 400
    assert not {"max_tokens", "temperature", "top_p", "stop"} & set(request.body)
    assert request.body["messages"][0]["role"] == "developer"


@pytest.mark.parametrize("model", REASONING)
async def test_a_helper_call_on_a_reasoning_model_leaves_its_temperature_out(
    fake: FakeProvider, llm: LlmClient, model: str
) -> None:
    call = helper_call(MESSAGES, model, temperature=0.0)
    target = Provider("openai", fake.base_url)
    events = [e async for e in llm.stream_chat(target, SecretStr(KEY), model=model, call=call)]
    assert isinstance(events[-1], Completion)
    (request,) = fake.chat_requests()
    assert "temperature" not in request.body
    assert request.body["messages"][0]["role"] == "developer"


def test_a_helper_call_on_another_model_keeps_its_temperature() -> None:
    assert helper_call(MESSAGES, "gpt-4o-mini", temperature=0.0).body == {"temperature": 0.0}
    assert helper_call(MESSAGES, "gpt-4o-mini").body == {}
