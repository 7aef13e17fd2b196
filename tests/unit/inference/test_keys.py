"""Whose key pays: the user's, the operator's for free_use configs, or none."""

import pytest
from pydantic import SecretStr

from tzurot.inference.keys import DEFAULT_FREE_MODELS, KeyResolver
from tzurot.inference.providers import ProviderRegistry
from tzurot.runtime.errors import FailedPrecondition

USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"
USER_KEY = "sk-userKEYzq7Wm3Xv9Rt2"
SYSTEM_KEY = "sk-or-systemKEYp8Ny4Lq"
PROVIDERS = ProviderRegistry()


class FakeVault:
    """An in-memory KeyDecryptor."""

    def __init__(self, keys: dict[tuple[str, str], str] | None = None) -> None:
        self.keys = keys or {}
        self.calls: list[tuple[str, str]] = []

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        self.calls.append((user_id, provider))
        key = self.keys.get((user_id, provider))
        return None if key is None else SecretStr(key)


async def test_user_key_wins() -> None:
    vault = FakeVault({(USER, "openrouter"): USER_KEY})
    resolver = KeyResolver(vault, {"openrouter": SecretStr(SYSTEM_KEY)})
    key = await resolver.resolve(USER, PROVIDERS.get("openrouter"), free_use=True)
    assert (key.api_key.get_secret_value(), key.source) == (USER_KEY, "user")
    assert USER_KEY not in repr(key)


async def test_system_key_only_for_free_use() -> None:
    resolver = KeyResolver(FakeVault(), {"openrouter": SecretStr(SYSTEM_KEY)})
    key = await resolver.resolve(USER, PROVIDERS.get("openrouter"), free_use=True)
    assert (key.api_key.get_secret_value(), key.source) == (SYSTEM_KEY, "system")
    with pytest.raises(FailedPrecondition) as caught:
        await resolver.resolve(USER, PROVIDERS.get("openrouter"), free_use=False)
    assert caught.value.reason == "NO_API_KEY"
    assert caught.value.metadata == {"provider": "openrouter"}
    assert caught.value.message == (
        "no API key for openrouter; add one with /wallet set openrouter"
    )


async def test_no_system_key_for_that_provider() -> None:
    resolver = KeyResolver(FakeVault(), {"openrouter": SecretStr(SYSTEM_KEY)})
    with pytest.raises(FailedPrecondition, match="no API key for openai") as caught:
        await resolver.resolve(USER, PROVIDERS.get("openai"), free_use=True)
    assert SYSTEM_KEY not in str(caught.value) + repr(caught.value)


async def test_empty_system_key_counts_as_none() -> None:
    resolver = KeyResolver(FakeVault(), {"openai": SecretStr("")})
    with pytest.raises(FailedPrecondition):
        await resolver.resolve(USER, PROVIDERS.get("openai"), free_use=True)


async def test_ollama_needs_no_key_and_never_asks_the_vault() -> None:
    vault = FakeVault()
    resolver = KeyResolver(vault)
    key = await resolver.resolve(USER, PROVIDERS.get("ollama"), free_use=False)
    assert (key.api_key.get_secret_value(), key.source) == ("ollama", "none")
    assert (await resolver.user_key(USER, PROVIDERS.get("ollama"))).get_secret_value() == "ollama"
    assert vault.calls == []


async def test_user_key_never_falls_back_to_the_system_key() -> None:
    resolver = KeyResolver(FakeVault(), {"openrouter": SecretStr(SYSTEM_KEY)})
    with pytest.raises(FailedPrecondition) as caught:
        await resolver.user_key(USER, PROVIDERS.get("openrouter"))
    assert caught.value.reason == "NO_API_KEY"
    vault = FakeVault({(USER, "openai"): USER_KEY})
    stored = await KeyResolver(vault).user_key(USER, PROVIDERS.get("openai"))
    assert stored.get_secret_value() == USER_KEY


@pytest.mark.parametrize(
    ("model", "free"),
    [
        ("meta-llama/llama-3.1-8b-instruct:free", True),
        ("google/gemma-2-9b-it", True),
        ("anthropic/claude-sonnet-4.5", False),
        ("anthropic/claude-sonnet-4.5:freeish", False),
    ],
)
async def test_system_key_only_for_the_operators_free_models(model: str, free: bool) -> None:
    resolver = KeyResolver(
        FakeVault(), {"openrouter": SecretStr(SYSTEM_KEY)}, ["*:free", "google/gemma-2-9b-it"]
    )
    openrouter = PROVIDERS.get("openrouter")
    if free:
        key = await resolver.resolve(USER, openrouter, free_use=True, model=model)
        assert key.source == "system"
    else:
        with pytest.raises(FailedPrecondition) as caught:
            await resolver.resolve(USER, openrouter, free_use=True, model=model)
        assert caught.value.reason == "NO_API_KEY"
        assert "/wallet set openrouter" in caught.value.message
    with pytest.raises(FailedPrecondition):  # a paid-for personality never uses it
        await resolver.resolve(USER, openrouter, free_use=False, model=model)


def test_default_free_models_are_openrouters_free_tier() -> None:
    resolver = KeyResolver(FakeVault(), {}, DEFAULT_FREE_MODELS)
    assert resolver.is_free_model("mistralai/mistral-7b-instruct:free")
    assert not resolver.is_free_model("openai/gpt-4o")
