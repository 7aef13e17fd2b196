"""Which dialect a provider speaks and which thinking budget Gemini 2.5 is sent (review M1,
M2): an operator's provider (`TZUROT_PROVIDERS`, any name) at a known vendor's host speaks
that vendor's dialect, and each Gemini 2.5 model gets a budget within its documented range."""

from __future__ import annotations

from typing import Any

import pytest

from tzurot.inference.dialects import build_call, dialect_of
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import ChatMessage

MESSAGES: list[ChatMessage] = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("provider", "base_url", "dialect"),
    [
        ("myopenai", "https://api.openai.com/v1", "openai"),
        ("work-azure", "https://tzurot.openai.azure.com/openai/v1", "openai"),
        ("router", "https://openrouter.ai/api/v1", "openrouter"),
        ("claude", "https://api.anthropic.com/v1", "anthropic"),
        ("google", "https://generativelanguage.googleapis.com/v1beta/openai", "gemini"),
        ("vllm", "http://127.0.0.1:8000/v1", "generic"),
        ("local", "http://api.openai.com.example.test/v1", "generic"),  # not OpenAI's host
        ("openai", "http://127.0.0.1:4000/v1", "openai"),  # the built-in name, a proxy
        ("openai", "", "openai"),
    ],
)
def test_the_dialect_is_the_vendors_at_its_host_else_the_names(
    provider: str, base_url: str, dialect: str
) -> None:
    assert dialect_of(provider, base_url) == dialect


def test_an_operator_provider_at_openai_gets_only_openais_parameters() -> None:
    """OpenAI refuses local servers' sampling extras (top_k, min_p, repetition_penalty)."""
    params = parse_advanced_parameters(
        {"temperature": 0.5, "top_k": 40, "min_p": 0.1, "repetition_penalty": 1.1}
    )
    at_openai = build_call(
        "myopenai", "gpt-4o", params, MESSAGES, base_url="https://api.openai.com/v1"
    )
    assert at_openai.body == {"temperature": 0.5}
    local = build_call("myopenai", "gpt-4o", params, MESSAGES, base_url="http://127.0.0.1:8000/v1")
    assert set(local.body) == {"temperature", "top_k", "min_p", "repetition_penalty"}


@pytest.mark.parametrize("model", ["o3", "o4-mini", "gpt-5", "gpt-5-mini"])
def test_an_operator_provider_sends_a_reasoning_model_what_it_takes(model: str) -> None:
    """By the model's name whatever the provider: max_completion_tokens, no sampling, no stop."""
    params = parse_advanced_parameters(
        {"max_tokens": 500, "temperature": 0.7, "top_p": 0.9, "stop": ["\n\n"]}
    )
    body = build_call("my-azure", model, params, MESSAGES, base_url="http://10.0.0.5/v1").body
    assert body == {"max_completion_tokens": 500}


def gemini_budget(model: str, parameters: dict[str, Any]) -> Any:
    call = build_call("gemini", model, parse_advanced_parameters(parameters), MESSAGES)
    return call.body["extra_body"]["google"]["thinking_config"]["thinking_budget"]


@pytest.mark.parametrize(
    ("model", "parameters", "budget"),
    [
        ("gemini-2.5-pro", {"thinking_level": "off"}, 128),  # cannot turn thinking off
        ("gemini-2.5-pro", {"reasoning": {"enabled": False}}, 128),
        ("gemini-2.5-pro", {"thinking_level": "max"}, 32768),
        ("gemini-2.5-pro", {"reasoning": {"max_tokens": 64}}, 128),
        ("gemini-2.5-pro-preview-06-05", {"thinking_level": "off"}, 128),
        ("gemini-2.5-flash", {"thinking_level": "off"}, 0),
        ("gemini-2.5-flash", {"thinking_level": "max"}, 24576),
        ("gemini-2.5-flash", {"thinking_level": "medium"}, 8192),
        ("gemini-2.5-flash-lite", {"thinking_level": "off"}, 0),
        ("gemini-2.5-flash-lite", {"thinking_level": "max"}, 24576),
        ("gemini-2.5-flash-lite", {"reasoning": {"max_tokens": 100}}, 512),
        ("gemini-2.5-flash-lite", {"thinking_level": "minimal"}, 1024),
    ],
)
def test_gemini_2_5_is_sent_a_budget_within_the_models_range(
    model: str, parameters: dict[str, Any], budget: int
) -> None:
    assert gemini_budget(model, parameters) == budget


def test_gemini_3_still_thinks_by_level() -> None:
    call = build_call(
        "gemini", "gemini-3-pro-preview", parse_advanced_parameters({"thinking_level": "max"}), []
    )
    assert call.body["extra_body"]["google"]["thinking_config"] == {
        "include_thoughts": True,
        "thinking_level": "high",
    }
