"""Pure parts of the LLM client: parameter filtering, Retry-After parsing."""

import pytest

from tzurot.inference.llm import retry_after_seconds, sampling_parameters


def test_only_known_parameters_pass() -> None:
    chosen = sampling_parameters(
        {
            "temperature": 0.7,
            "top_p": 1,
            "max_tokens": 512.0,
            "seed": 42.0,
            "presence_penalty": 0.1,
            "frequency_penalty": -0.2,
            "stop": ["\nUser:"],
            "api_base": "http://evil.invalid",
            "extra_headers": {"x": "y"},
            "model": "other/model",
            "stream": False,
        }
    )
    assert chosen == {
        "temperature": 0.7,
        "top_p": 1.0,
        "max_tokens": 512,
        "seed": 42,
        "presence_penalty": 0.1,
        "frequency_penalty": -0.2,
        "stop": ["\nUser:"],
    }
    assert isinstance(chosen["max_tokens"], int)


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": "hot"},
        {"temperature": True},
        {"temperature": float("nan")},
        {"max_tokens": 10.5},
        {"stop": [1, 2]},
        {"stop": ["a", "b", "c", "d", "e"]},
        {"stop": []},
    ],
)
def test_malformed_values_are_dropped(params: dict[str, object]) -> None:
    assert sampling_parameters(params) == {}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"retry-after": "-1"}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected
