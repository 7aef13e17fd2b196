"""Effective LLM config: user override → personality default → global default."""

from tzurot.gateway.domain import ConfigSource, LlmConfig, ResolvedConfig

GLOBAL_DEFAULT_ID = "global-default"


def global_default_config(provider: str, model: str) -> LlmConfig:
    """The operator's fallback config, from settings rather than the database."""
    return LlmConfig(id=GLOBAL_DEFAULT_ID, name="global default", provider=provider, model=model)


def resolve_llm_config(
    *,
    user_override: LlmConfig | None,
    personality_default: LlmConfig | None,
    global_default: LlmConfig,
) -> ResolvedConfig:
    if user_override is not None:
        return ResolvedConfig(user_override, ConfigSource.USER_PERSONALITY)
    if personality_default is not None:
        return ResolvedConfig(personality_default, ConfigSource.PERSONALITY)
    return ResolvedConfig(global_default, ConfigSource.GLOBAL)
