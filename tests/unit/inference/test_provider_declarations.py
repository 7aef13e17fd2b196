"""What the operator declares of a provider (`TZUROT_PROVIDERS`' object form) and what inference
makes of it: which providers speak (ListProvidersResponse.speech_providers, so a voice may name
them) and which take no key.

Review: ListProviders carried names only, so a chat back end the operator added was taken as a
voice and failed at every answer; and keylessness went by the built-in names, so a keyless
speech server the operator added under a name of its own asked every listener for a key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import SecretStr, ValidationError

from tzurot.inference.config import InferenceSettings, ProviderSetting
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import Declared, ProviderRegistry
from tzurot.inference.server import InferenceServicer
from tzurot.inference.wallet_keys import speech_providers
from tzurot.runtime.errors import FailedPrecondition, StartupError
from tzurot.runtime.main import describe_settings_error
from tzurot.v1 import inference_pb2 as inf

USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"
SPEECH_SERVER = "http://tts.lan:8880/v1"
CHAT_SERVER = "http://deepseek.lan:8000/v1"
OPERATORS: dict[str, str | Declared] = {
    "deepseek": CHAT_SERVER,  # a chat back end: a plain base URL, as before
    "my-tts": ProviderSetting(base_url=SPEECH_SERVER, speech=True, keyless=True),
}


class Vault:
    """A keyvault holding no key: a provider that needs one is NO_API_KEY."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        self.asked.append(provider)
        return None


def test_the_built_in_speech_providers_speak_and_an_added_name_does_not_until_declared() -> None:
    registry = ProviderRegistry(OPERATORS)
    assert registry.speech_names == ["kokoro", "my-tts", "openai", "openedai-speech"]
    assert not registry.get("deepseek").speaks
    assert ProviderRegistry().speech_names == ["kokoro", "openai", "openedai-speech"]
    in_a_pod = ProviderRegistry(OPERATORS, loopback_defaults=False)  # kokoro: no address
    assert in_a_pod.speech_names == ["my-tts", "openai"]


def test_a_declaration_overrides_the_built_in_rule_either_way() -> None:
    """`vllm` pointed at a speech server speaks once declared so; `openai` declared not to
    (an Azure endpoint without speech) is no longer offered; a built-in keyless server behind
    an authenticating proxy asks for a key."""
    registry = ProviderRegistry(
        {
            "vllm": ProviderSetting(base_url=SPEECH_SERVER, speech=True),
            "openai": ProviderSetting(base_url="https://my.openai.azure.com/v1", speech=False),
            "kokoro": ProviderSetting(base_url=SPEECH_SERVER, keyless=False),
        }
    )
    assert registry.speech_names == ["kokoro", "openedai-speech", "vllm"]
    assert not registry.get("vllm").needs_key  # keyless stays the built-in rule's
    assert registry.get("kokoro").needs_key
    assert registry.get("openai").base_url == "https://my.openai.azure.com/v1"


def test_a_declared_base_url_is_checked_as_a_plain_one() -> None:
    bad = ProviderSetting(base_url="https://user:hunter2@tts.lan/v1", speech=True)
    with pytest.raises(StartupError, match="must not carry credentials") as caught:
        ProviderRegistry({"my-tts": bad})
    assert "hunter2" not in str(caught.value)


async def test_a_declared_keyless_provider_asks_nobody_for_a_key() -> None:
    """The fix: before it, keylessness went by name, so `my-tts` was NO_API_KEY for a
    listener without a key for it (and the key resolver asked keyvault)."""
    registry = ProviderRegistry(OPERATORS)
    vault = Vault()
    keys = KeyResolver(vault)
    resolved = await keys.resolve(USER, registry.get("my-tts"), free_use=False)
    assert resolved.source == "none"
    assert (await keys.user_key(USER, registry.get("my-tts"))).get_secret_value()
    assert vault.asked == []
    with pytest.raises(FailedPrecondition) as caught:  # an undeclared added name still needs one
        await keys.resolve(USER, registry.get("deepseek"), free_use=False)
    assert caught.value.reason == "NO_API_KEY"
    assert vault.asked == ["deepseek"]


def test_the_operator_declares_it_in_tzurot_providers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The JSON form, and one variable per entry; a plain URL stays what it was."""
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    monkeypatch.setenv(
        "TZUROT_PROVIDERS",
        f'{{"deepseek": "{CHAT_SERVER}", '
        f'"my-tts": {{"base_url": "{SPEECH_SERVER}", "speech": true, "keyless": true}}}}',
    )
    monkeypatch.setenv(
        "TZUROT_PROVIDERS__PIPER", f'{{"base_url": "{SPEECH_SERVER}", "speech": true}}'
    )
    settings = InferenceSettings.load()
    assert settings.providers == {
        "deepseek": CHAT_SERVER,
        "my-tts": ProviderSetting(base_url=SPEECH_SERVER, speech=True, keyless=True),
        "piper": ProviderSetting(base_url=SPEECH_SERVER, speech=True),
    }
    registry = ProviderRegistry(settings.providers)
    assert registry.speech_names == ["kokoro", "my-tts", "openai", "openedai-speech", "piper"]
    assert registry.get("piper").needs_key  # not declared keyless


def test_a_misspelt_declaration_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TZUROT_TLS_DIR", str(tmp_path))
    monkeypatch.setenv(
        "TZUROT_PROVIDERS", f'{{"my-tts": {{"base_url": "{SPEECH_SERVER}", "speach": true}}}}'
    )
    with pytest.raises(ValidationError) as caught:
        InferenceSettings.load()
    said = describe_settings_error(caught.value)
    assert (
        "TZUROT_PROVIDERS__MY-TTS__PROVIDERSETTING__SPEACH: Extra inputs are not permitted" in said
    )


def test_the_speech_providers_are_elevenlabs_and_the_registrys_when_voice_is_served() -> None:
    assert speech_providers(["openai", "my-tts"], voice=True) == ["elevenlabs", "my-tts", "openai"]
    assert speech_providers(["openai"], voice=False) == []


class Inference:
    def __init__(self, registry: ProviderRegistry) -> None:
        self._registry = registry

    def provider_names(self) -> list[str]:
        return self._registry.names

    def speech_provider_names(self) -> list[str]:
        return self._registry.speech_names

    def keyless_provider_names(self) -> list[str]:
        return self._registry.keyless_names


async def test_list_providers_says_which_speak_and_that_it_says_so() -> None:
    """The field an older inference leaves unset (`speech_providers_listed`) is set, so the
    gateway believes the list; with voice not served it is set and empty: none speaks."""
    registry = ProviderRegistry(OPERATORS, loopback_defaults=False)
    voiced = InferenceServicer(cast(Any, Inference(registry)), voice=cast(Any, object()))
    answer = await voiced.ListProviders(inf.ListProvidersRequest(), cast(Any, None))
    assert list(answer.providers) == sorted({*registry.names, "elevenlabs"})
    assert "deepseek" in answer.providers
    assert list(answer.speech_providers) == ["elevenlabs", "my-tts", "openai"]
    assert answer.speech_providers_listed
    silent = InferenceServicer(cast(Any, Inference(registry)))
    answer = await silent.ListProviders(inf.ListProvidersRequest(), cast(Any, None))
    assert (list(answer.speech_providers), answer.speech_providers_listed) == ([], True)
