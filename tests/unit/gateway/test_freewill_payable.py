"""`/freewill on` resolves the payer's model once: its refusal (no key for it, or inference
cannot say whether it takes one) names the provider of the config the check was made with,
not of a second lookup made after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tzurot.gateway.clock import ManualClock
from tzurot.gateway.domain import (
    ConfigSource,
    LlmConfig,
    Location,
    Personality,
    ResolvedConfig,
    User,
    WalletKey,
)
from tzurot.gateway.freewill import FreeWill
from tzurot.gateway.provider_list import InferenceProviders, ProviderList, ProviderNames
from tzurot.runtime.errors import FailedPrecondition, TzurotError, Unavailable

from .personality_support import personality

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ANN = User("u-1", "discord-1", "Ann", "UTC", False, False, T0)
HEARTH = personality(
    "hearth", "Hearth", id="p-1", system_prompt="You are Hearth.", created_at=T0, updated_at=T0
)
WHERE = Location(guild_id="g-1", channel_id="c-1")


class Store:
    """The group store as `/freewill on` reads it before its check: Hearth is activated."""

    engine = None

    async def members(self, channel_id: str) -> list[Any]:
        return [SimpleNamespace(activation=SimpleNamespace(personality=HEARTH))]


class NoKeys:
    async def list_keys(self, user_id: str) -> list[WalletKey]:
        return []


@dataclass
class Configs:
    """The config cascade: each lookup answers the next provider of `providers` (as an edit
    between two lookups would), counted."""

    providers: list[str]
    asked: int = 0

    async def __call__(self, personality: Personality, user: User, where: str) -> ResolvedConfig:
        provider = self.providers[min(self.asked, len(self.providers) - 1)]
        self.asked += 1
        return ResolvedConfig(LlmConfig("c-1", "cfg", provider, "m/one"), ConfigSource.GLOBAL)


class Down:
    """Inference's ListProviders while it is down."""

    async def list_providers(self) -> ProviderList:
        raise Unavailable("inference is restarting")


def free_will(configs: Configs, providers: ProviderNames | None = None) -> FreeWill:
    async def personality_of(personality_id: str) -> Personality:
        return HEARTH

    return FreeWill(
        cast(Any, Store()),
        ManualClock(T0),
        cast(Any, NoKeys()),
        configs,
        personality_of,
        providers=providers,
    )


async def turn_on(will: FreeWill) -> TzurotError:
    with pytest.raises(TzurotError) as refused:
        await will.set(ANN, WHERE, HEARTH, enabled=True)
    return refused.value


async def test_no_key_names_the_provider_it_was_checked_for_with_one_lookup() -> None:
    configs = Configs(["openrouter", "anthropic"])
    refused = await turn_on(free_will(configs))
    assert isinstance(refused, FailedPrecondition)
    assert refused.reason == "NO_API_KEY"
    assert "no working one for openrouter; add one with /wallet set openrouter" in str(refused)
    assert configs.asked == 1


async def test_an_unknown_keyless_status_names_its_provider_with_one_lookup() -> None:
    configs = Configs(["my-llm", "openrouter"])
    refused = await turn_on(free_will(configs, InferenceProviders(Down())))
    assert isinstance(refused, Unavailable)
    assert refused.message == (
        "inference cannot say right now whether my-llm takes a key; try again in a minute"
    )
    assert configs.asked == 1
