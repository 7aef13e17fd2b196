"""Effective config resolution order."""

from tzurot.gateway.domain import ConfigSource, LlmConfig
from tzurot.gateway.resolve import global_default_config, resolve_llm_config

GLOBAL = global_default_config("openrouter", "openai/gpt-4o-mini")
PERSONALITY = LlmConfig(id="p", name="lilith default", provider="openrouter", model="claude")
OVERRIDE = LlmConfig(id="u", name="mine", provider="openai", model="gpt-5")


def test_user_override_wins() -> None:
    resolved = resolve_llm_config(
        user_override=OVERRIDE, personality_default=PERSONALITY, global_default=GLOBAL
    )
    assert resolved.config is OVERRIDE
    assert resolved.source is ConfigSource.USER_PERSONALITY


def test_personality_default_before_global() -> None:
    resolved = resolve_llm_config(
        user_override=None, personality_default=PERSONALITY, global_default=GLOBAL
    )
    assert (resolved.config, resolved.source) == (PERSONALITY, ConfigSource.PERSONALITY)


def test_global_default_last() -> None:
    resolved = resolve_llm_config(
        user_override=None, personality_default=None, global_default=GLOBAL
    )
    assert resolved.source is ConfigSource.GLOBAL
    assert (resolved.config.provider, resolved.config.model) == ("openrouter", "openai/gpt-4o-mini")
