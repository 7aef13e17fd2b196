"""Effective config resolution order: user toward the personality → user default → channel →
personality → global."""

import pytest

from tzurot.gateway.domain import ConfigSource, LlmConfig
from tzurot.gateway.resolve import config_levels, global_default_config, resolve_llm_config

GLOBAL = global_default_config("openrouter", "openai/gpt-4o-mini")
PERSONALITY = LlmConfig(id="p", name="lilith default", provider="openrouter", model="claude")
OVERRIDE = LlmConfig(id="u", name="mine", provider="openai", model="gpt-5")
USER_DEFAULT = LlmConfig(id="d", name="my default", provider="openai", model="gpt-4.1")
CHANNEL = LlmConfig(id="c", name="house model", provider="openrouter", model="llama")
ALL = {
    ConfigSource.USER_PERSONALITY: OVERRIDE,
    ConfigSource.USER: USER_DEFAULT,
    ConfigSource.CHANNEL: CHANNEL,
}


@pytest.mark.parametrize(
    ("dropped", "winner", "source"),
    [
        ((), OVERRIDE, ConfigSource.USER_PERSONALITY),
        ((ConfigSource.USER_PERSONALITY,), USER_DEFAULT, ConfigSource.USER),
        ((ConfigSource.USER_PERSONALITY, ConfigSource.USER), CHANNEL, ConfigSource.CHANNEL),
        (tuple(ALL), PERSONALITY, ConfigSource.PERSONALITY),
    ],
)
def test_each_level_wins_over_the_ones_below(
    dropped: tuple[ConfigSource, ...], winner: LlmConfig, source: ConfigSource
) -> None:
    chosen = {s: c for s, c in ALL.items() if s not in dropped}
    resolved = resolve_llm_config(
        chosen=chosen, personality_default=PERSONALITY, global_default=GLOBAL
    )
    assert (resolved.config, resolved.source) == (winner, source)


def test_levels_are_listed_highest_first() -> None:
    levels = config_levels(chosen=ALL, personality_default=PERSONALITY, global_default=GLOBAL)
    assert [level.source for level in levels] == [
        ConfigSource.USER_PERSONALITY,
        ConfigSource.USER,
        ConfigSource.CHANNEL,
        ConfigSource.PERSONALITY,
        ConfigSource.GLOBAL,
    ]


def test_only_chosen_levels_come_from_choices() -> None:
    stray = {ConfigSource.PERSONALITY: OVERRIDE, ConfigSource.GLOBAL: OVERRIDE}
    resolved = resolve_llm_config(chosen=stray, personality_default=None, global_default=GLOBAL)
    assert (resolved.config, resolved.source) == (GLOBAL, ConfigSource.GLOBAL)


def test_global_default_last() -> None:
    resolved = resolve_llm_config(chosen={}, personality_default=None, global_default=GLOBAL)
    assert resolved.source is ConfigSource.GLOBAL
    assert (resolved.config.provider, resolved.config.model) == ("openrouter", "openai/gpt-4o-mini")
