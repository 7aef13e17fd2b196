"""Reasoning-model rules per provider and model family, checked on the exact request the
fake provider receives from the real openai client: roles, parameters, token fields."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from tzurot.inference.dialects import build_call
from tzurot.inference.llm import LlmClient
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider
from tzurot.runtime.errors import InvalidArgument
from tzurot.testing.fake_provider import FakeProvider

pytestmark = pytest.mark.contract

KEY = "plantedDIALECTzq7Wm3Xv9Rt2"
MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "You are Lilith."},
    {"role": "user", "content": "Ann: hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "system", "content": "Current date and time: now"},
    {"role": "user", "content": "Ann: and you?"},
]
SAMPLING = {
    "temperature": 0.7,
    "top_p": 0.9,
    "top_k": 40,
    "min_p": 0.05,
    "frequency_penalty": 0.2,
    "presence_penalty": 0.1,
    "repetition_penalty": 1.1,
    "seed": 7,
}
ENVELOPE = {"model", "messages", "stream", "stream_options"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={KEY}, any_model=True) as provider:
        yield provider


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    client = LlmClient(timeout_seconds=10.0)
    try:
        yield client
    finally:
        await client.aclose()


async def sent(
    fake: FakeProvider,
    llm: LlmClient,
    provider: str,
    model: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The JSON body the provider received, without the envelope every call has."""
    call = build_call(provider, model, parse_advanced_parameters(params), MESSAGES)
    events = llm.stream_chat(
        Provider(provider, fake.base_url), SecretStr(KEY), model=model, call=call
    )
    async for _ in events:
        pass
    body = fake.chat_requests()[-1].body
    assert body["model"] == model
    assert body["stream"] is True
    return body


def roles(body: dict[str, Any]) -> list[str]:
    return [m["role"] for m in body["messages"]]


def rest(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ENVELOPE}


async def test_openai_reasoning_model_on_openai(fake: FakeProvider, llm: LlmClient) -> None:
    body = await sent(
        fake,
        llm,
        "openai",
        "o3-mini",
        {**SAMPLING, "max_tokens": 2000, "stop": ["x"], "thinking_level": "high"},
    )
    assert roles(body) == ["developer", "user", "assistant", "developer", "user"]
    # no sampling parameter, no stop, max_completion_tokens instead of max_tokens
    assert rest(body) == {"seed": 7, "max_completion_tokens": 2000, "reasoning_effort": "high"}


async def test_o1_mini_takes_no_system_role_at_all(fake: FakeProvider, llm: LlmClient) -> None:
    body = await sent(fake, llm, "openai", "o1-mini", {})
    assert roles(body) == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == "You are Lilith.\n\nAnn: hi"
    assert body["messages"][2]["content"] == "Current date and time: now\n\nAnn: and you?"


async def test_gpt5_through_openrouter(fake: FakeProvider, llm: LlmClient) -> None:
    body = await sent(
        fake,
        llm,
        "openrouter",
        "openai/gpt-5",
        {**SAMPLING, "max_tokens": 500, "thinking_level": "low"},
    )
    assert roles(body)[0] == "developer"
    assert rest(body) == {"seed": 7, "max_tokens": 500, "reasoning": {"effort": "low"}}


async def test_ordinary_openai_model_keeps_system_and_sampling(
    fake: FakeProvider, llm: LlmClient
) -> None:
    body = await sent(fake, llm, "openai", "gpt-4o", {**SAMPLING, "max_tokens": 300})
    assert roles(body) == ["system", "user", "assistant", "system", "user"]
    # OpenAI rejects top_k, min_p and repetition_penalty: they are not sent
    assert rest(body) == {
        "temperature": 0.7,
        "top_p": 0.9,
        "frequency_penalty": 0.2,
        "presence_penalty": 0.1,
        "seed": 7,
        "max_tokens": 300,
    }


async def test_claude_thinking_on_anthropic(fake: FakeProvider, llm: LlmClient) -> None:
    body = await sent(
        fake,
        llm,
        "anthropic",
        "claude-sonnet-4-5",
        {"temperature": 0.4, "top_p": 0.9, "max_tokens": 6000, "thinking_level": "medium"},
    )
    # temperature forced to 1, the budget below max tokens
    assert rest(body) == {
        "temperature": 1.0,
        "max_tokens": 6000,
        "thinking": {"type": "enabled", "budget_tokens": 5999},
    }
    # later system messages travel as user messages (Anthropic hoists system messages)
    assert roles(body) == ["system", "user", "assistant", "user", "user"]


async def test_claude_thinking_without_max_tokens_gets_room(
    fake: FakeProvider, llm: LlmClient
) -> None:
    body = await sent(fake, llm, "anthropic", "claude-opus-4", {"thinking_level": "low"})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 2048 + 4096
    assert body["temperature"] == 1.0


async def test_claude_thinking_through_openrouter(fake: FakeProvider, llm: LlmClient) -> None:
    body = await sent(
        fake,
        llm,
        "openrouter",
        "anthropic/claude-sonnet-4.5",
        {
            "reasoning": {"max_tokens": 3000, "exclude": True},
            "max_tokens": 8000,
            "temperature": 0.3,
        },
    )
    assert rest(body) == {
        "temperature": 1.0,
        "max_tokens": 8000,
        "reasoning": {"max_tokens": 3000, "exclude": True},
    }


async def test_claude_without_thinking_keeps_its_temperature(
    fake: FakeProvider, llm: LlmClient
) -> None:
    body = await sent(fake, llm, "anthropic", "claude-sonnet-4-5", {"temperature": 0.4, "top_k": 5})
    assert rest(body) == {"temperature": 0.4}


def test_claude_thinking_with_too_few_max_tokens_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        build_call(
            "anthropic",
            "claude-sonnet-4-5",
            parse_advanced_parameters({"max_tokens": 1000, "thinking_level": "high"}),
            MESSAGES,
        )
    assert caught.value.field == "config.config.advanced_parameters.max_tokens"


async def test_gemini_25_thinks_by_budget(fake: FakeProvider, llm: LlmClient) -> None:
    body = await sent(
        fake, llm, "gemini", "gemini-2.5-flash", {"thinking_level": "high", "top_k": 3}
    )
    assert rest(body) == {
        "extra_body": {
            "google": {"thinking_config": {"include_thoughts": True, "thinking_budget": 16384}}
        }
    }
    assert roles(body) == ["system", "user", "assistant", "user", "user"]


async def test_gemini_25_off_is_a_zero_budget(fake: FakeProvider, llm: LlmClient) -> None:
    body = await sent(fake, llm, "gemini", "gemini-2.5-flash", {"thinking_level": "off"})
    assert body["extra_body"] == {
        "google": {"thinking_config": {"include_thoughts": False, "thinking_budget": 0}}
    }


@pytest.mark.parametrize(
    ("level", "expected"), [("minimal", "low"), ("medium", "high"), ("max", "high")]
)
async def test_gemini_3_thinks_by_level(
    fake: FakeProvider, llm: LlmClient, level: str, expected: str
) -> None:
    body = await sent(fake, llm, "gemini", "gemini-3-pro-preview", {"thinking_level": level})
    assert body["extra_body"]["google"]["thinking_config"]["thinking_level"] == expected


async def test_gemini_through_openrouter_gets_a_budget(fake: FakeProvider, llm: LlmClient) -> None:
    body = await sent(fake, llm, "openrouter", "google/gemini-2.5-pro", {"thinking_level": "max"})
    assert body["reasoning"] == {"max_tokens": 32768}


async def test_openrouter_routing_and_headers_pass_through(
    fake: FakeProvider, llm: LlmClient
) -> None:
    params = {
        **SAMPLING,
        "provider": {"order": ["anthropic", "google"], "allow_fallbacks": False},
        "models": ["anthropic/claude-3.5-sonnet"],
        "transforms": ["middle-out"],
        "route": "fallback",
        "extra_headers": {"HTTP-Referer": "https://tzurot.example", "X-Title": "Tzurot"},
        "response_format": {"type": "json_object"},
    }
    body = await sent(fake, llm, "openrouter", "meta-llama/llama-3.3-70b", params)
    assert rest(body) == {
        **SAMPLING,
        "provider": {"order": ["anthropic", "google"], "allow_fallbacks": False},
        "models": ["anthropic/claude-3.5-sonnet"],
        "transforms": ["middle-out"],
        "route": "fallback",
        "response_format": {"type": "json_object"},
    }


async def test_extra_headers_reach_the_provider(fake: FakeProvider, llm: LlmClient) -> None:
    params = parse_advanced_parameters({"extra_headers": {"X-Title": "Tzurot"}})
    call = build_call("openrouter", "x/y", params, MESSAGES)
    target = Provider("openrouter", fake.base_url)
    async for _ in llm.stream_chat(target, SecretStr(KEY), model="x/y", call=call):
        pass
    [request] = fake.chat_requests()
    assert request.headers["x-title"] == "Tzurot"
    assert "extra_headers" not in request.body


async def test_local_servers_get_the_sampling_extras(fake: FakeProvider, llm: LlmClient) -> None:
    body = await sent(fake, llm, "vllm", "Qwen/Qwen3-8B", {**SAMPLING, "thinking_level": "high"})
    assert rest(body) == SAMPLING  # no reasoning field a local server might reject
