"""With the operator's key (a free model, `keys.py`), a config's OpenRouter fallback list is
not sent (review 158 L6): `models`/`route: "fallback"` let OpenRouter answer with a paid model
on any error of the free one, billed to the operator. The user's own key keeps them."""

from __future__ import annotations

from tzurot.inference.dialects import build_call
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import ChatMessage

RAW = {
    "models": ["anthropic/claude-opus-4", "openai/gpt-5"],
    "route": "fallback",
    "provider": {"order": ["chutes"]},
    "temperature": 0.7,
}
MESSAGES: list[ChatMessage] = [{"role": "user", "content": "hi"}]


def test_the_users_own_key_sends_the_fallbacks() -> None:
    body = build_call("openrouter", "x/free:free", parse_advanced_parameters(RAW), MESSAGES).body
    assert body["models"] == RAW["models"]
    assert body["route"] == "fallback"


def test_the_operators_key_drops_the_fallbacks_and_keeps_the_rest() -> None:
    params = parse_advanced_parameters(RAW).for_operator_key()
    body = build_call("openrouter", "x/free:free", params, MESSAGES).body
    assert "models" not in body
    assert "route" not in body
    assert body["provider"] == {"order": ["chutes"]}
    assert body["temperature"] == 0.7


def test_parameters_without_fallbacks_are_kept_as_they_are() -> None:
    params = parse_advanced_parameters({"temperature": 0.5})
    assert params.for_operator_key() is params
