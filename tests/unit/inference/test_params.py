"""The advanced_parameters schema: every group accepted, anything unknown or out of range
refused with INVALID_ARGUMENT naming the field."""

from typing import Any

import pytest

from tzurot.inference.params import parse_advanced_parameters
from tzurot.runtime.errors import InvalidArgument

PREFIX = "config.config.advanced_parameters."


def test_every_group_is_accepted_and_struct_doubles_become_ints() -> None:
    params = parse_advanced_parameters(
        {
            "temperature": 0.7,
            "top_p": 1,
            "top_k": 40.0,
            "min_p": 0.05,
            "frequency_penalty": -0.2,
            "presence_penalty": 0.1,
            "repetition_penalty": 1.1,
            "seed": 42.0,
            "thinking_level": "high",
            "reasoning": {"exclude": True},
            "max_tokens": 512.0,
            "stop": ["\nUser:"],
            "response_format": {"type": "json_object"},
            "provider": {"order": ["anthropic", "google"], "allow_fallbacks": False},
            "models": ["anthropic/claude-sonnet-4.5"],
            "transforms": ["middle-out"],
            "route": "fallback",
            "extra_headers": {"HTTP-Referer": "https://tzurot.example"},
        }
    )
    assert params.sampling() == {
        "temperature": 0.7,
        "top_p": 1.0,
        "top_k": 40,
        "min_p": 0.05,
        "frequency_penalty": -0.2,
        "presence_penalty": 0.1,
        "repetition_penalty": 1.1,
        "seed": 42,
    }
    assert isinstance(params.max_tokens, int)
    assert isinstance(params.sampling()["top_k"], int)
    assert params.routing() == {
        "provider": {"order": ["anthropic", "google"], "allow_fallbacks": False},
        "models": ["anthropic/claude-sonnet-4.5"],
        "transforms": ["middle-out"],
        "route": "fallback",
    }


def test_empty_is_fine() -> None:
    assert parse_advanced_parameters({}).sampling() == {}
    assert parse_advanced_parameters(None).routing() == {}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"api_base": "http://evil.invalid"}, "api_base"),
        ({"model": "other/model"}, "model"),
        ({"stream": False}, "stream"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"min_p": 2}, "min_p"),
        ({"frequency_penalty": 3}, "frequency_penalty"),
        ({"presence_penalty": -2.5}, "presence_penalty"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"seed": 1.5}, "seed"),
        ({"max_tokens": 10.5}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": [1, 2]}, "stop"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": []}, "stop"),
        ({"thinking_level": "extreme"}, "thinking_level"),
        ({"reasoning": {"effort": "huge"}}, "reasoning.effort"),
        ({"reasoning": {"budget": 5}}, "reasoning.budget"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"provider": {"order": ["a"], "secret_sauce": 1}}, "provider.secret_sauce"),
        ({"provider": {"sort": "vibes"}}, "provider.sort"),
        ({"route": "random"}, "route"),
        ({"extra_headers": {"Authorization": "Bearer x"}}, "extra_headers"),
        ({"extra_headers": {"bad header": "x"}}, "extra_headers"),
        ({"vision": "yes"}, "vision"),
    ],
)
def test_bad_values_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_advanced_parameters(raw)
    assert caught.value.field == PREFIX + field
    assert caught.value.reason == "INVALID_ADVANCED_PARAMETER"
    assert field.split(".", maxsplit=1)[0] in caught.value.message
    assert "Bearer x" not in caught.value.message
