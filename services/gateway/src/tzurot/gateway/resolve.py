"""Effective LLM config: the user toward the personality → the user's default → the channel →
the personality's default → the global default; the first level that holds a config wins."""

from collections.abc import Mapping

from tzurot.gateway.domain import ConfigSource, LlmConfig, ResolvedConfig

GLOBAL_DEFAULT_ID = "global-default"
PRECEDENCE = (
    ConfigSource.USER_PERSONALITY,
    ConfigSource.USER,
    ConfigSource.CHANNEL,
    ConfigSource.PERSONALITY,
    ConfigSource.GLOBAL,
)
"""Highest first."""


def global_default_config(provider: str, model: str) -> LlmConfig:
    """The operator's fallback config, from settings rather than the database."""
    return LlmConfig(id=GLOBAL_DEFAULT_ID, name="global default", provider=provider, model=model)


def config_levels(
    *,
    chosen: Mapping[ConfigSource, LlmConfig],
    personality_default: LlmConfig | None,
    global_default: LlmConfig,
) -> list[ResolvedConfig]:
    """Every level holding a config, highest precedence first; the first one wins.

    `chosen` holds the levels people choose (USER_PERSONALITY, USER, CHANNEL); the rest are
    ignored there, as the personality's and the global default come from their own places.
    """
    held = {
        **{s: c for s, c in chosen.items() if s in PRECEDENCE[:3]},
        ConfigSource.GLOBAL: global_default,
    }
    if personality_default is not None:
        held[ConfigSource.PERSONALITY] = personality_default
    return [ResolvedConfig(held[source], source) for source in PRECEDENCE if source in held]


def resolve_llm_config(
    *,
    chosen: Mapping[ConfigSource, LlmConfig],
    personality_default: LlmConfig | None,
    global_default: LlmConfig,
) -> ResolvedConfig:
    return config_levels(
        chosen=chosen, personality_default=personality_default, global_default=global_default
    )[0]
