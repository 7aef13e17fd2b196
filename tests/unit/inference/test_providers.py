"""The provider registry: defaults, operator overrides, unknown names."""

from pathlib import Path

import pytest

from tzurot.inference.config import InferenceSettings
from tzurot.inference.providers import DEFAULT_PROVIDERS, LOCAL_PROVIDERS, ProviderRegistry
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument, StartupError


def test_defaults() -> None:
    registry = ProviderRegistry()
    assert registry.names == [
        "anthropic",
        "gemini",
        "kokoro",
        "lmstudio",
        "ollama",
        "openai",
        "openedai-speech",
        "openrouter",
        "vllm",
    ]
    assert registry.get("anthropic").base_url == "https://api.anthropic.com/v1"
    assert registry.get("gemini").base_url == (
        "https://generativelanguage.googleapis.com/v1beta/openai"
    )
    assert registry.get("vllm").base_url == "http://127.0.0.1:8000/v1"
    assert registry.get("lmstudio").base_url == "http://127.0.0.1:1234/v1"
    assert not registry.get("vllm").needs_key
    assert not registry.get("lmstudio").needs_key
    assert registry.get("anthropic").needs_key
    assert registry.get("openrouter").base_url == "https://openrouter.ai/api/v1"
    assert registry.get("openai").base_url == "https://api.openai.com/v1"
    assert registry.get("ollama").base_url == "http://127.0.0.1:11434/v1"
    assert not registry.get("ollama").needs_key
    assert registry.get("openai").needs_key


def test_overrides_and_additions() -> None:
    registry = ProviderRegistry(
        {"ollama": "http://gpu-box:11434/v1/", "local": "http://127.0.0.1:8080/v1"}
    )
    assert registry.get("ollama").base_url == "http://gpu-box:11434/v1"
    assert registry.get("local").base_url == "http://127.0.0.1:8080/v1"
    assert registry.get("local").needs_key
    assert registry.names == sorted([*DEFAULT_PROVIDERS, "local"])


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(InvalidArgument) as caught:
        ProviderRegistry({"local": "http://127.0.0.1:1/v1"}).get("anthropicc")
    assert caught.value.field == "provider"
    assert caught.value.reason == "UNKNOWN_PROVIDER"
    assert caught.value.message == (
        "unknown provider 'anthropicc'; known: anthropic, gemini, kokoro, lmstudio, local, "
        "ollama, openai, openedai-speech, openrouter, vllm"
    )


@pytest.mark.parametrize(
    ("name", "url", "expected"),
    [
        ("Bad Name", "http://x/v1", "provider name 'Bad Name'"),
        ("x", "ftp://x/v1", "base URL of 'x' must be an http(s) URL"),
        ("x", "not a url", "base URL of 'x' must be an http(s) URL"),
        ("x", "https://user:hunter2@x/v1", "must not carry credentials"),
    ],
)
def test_bad_operator_providers_fail_at_start(name: str, url: str, expected: str) -> None:
    with pytest.raises(StartupError, match="TZUROT_PROVIDERS") as caught:
        ProviderRegistry({name: url})
    assert expected in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("name", sorted(LOCAL_PROVIDERS))
def test_in_a_pod_a_local_provider_left_at_loopback_says_what_to_set(name: str) -> None:
    """TZUROT_LOOPBACK_PROVIDERS=false (the Kubernetes manifests): nothing listens on the
    pod's loopback, so the built-in local providers are not offered, and picking one is
    refused at once with what the operator must set, not left to a connection timeout."""
    registry = ProviderRegistry(loopback_defaults=False)
    assert registry.names == ["anthropic", "gemini", "openai", "openrouter"]
    with pytest.raises(FailedPrecondition) as caught:
        registry.get(name)
    assert caught.value.reason == "PROVIDER_NOT_CONFIGURED"
    assert caught.value.metadata == {"provider": name}
    assert caught.value.message == (
        f"provider {name!r} is not set up on this server: its default address "
        f"{DEFAULT_PROVIDERS[name]} is the answering service's own loopback, where nothing "
        "runs in this deployment; the operator must give it its server's address "
        "(TZUROT_PROVIDERS)"
    )
    with pytest.raises(InvalidArgument, match="unknown provider 'nope'; known: anthropic, "):
        registry.get("nope")


def test_in_a_pod_a_local_provider_given_an_address_is_offered() -> None:
    """An address from TZUROT_PROVIDERS makes it usable, a loopback one too (a sidecar)."""
    registry = ProviderRegistry(
        {"ollama": "http://ollama.ai.svc:11434/v1", "kokoro": "http://127.0.0.1:8880/v1"},
        loopback_defaults=False,
    )
    assert registry.names == ["anthropic", "gemini", "kokoro", "ollama", "openai", "openrouter"]
    assert registry.get("ollama").base_url == "http://ollama.ai.svc:11434/v1"
    assert not registry.get("ollama").needs_key
    assert registry.get("kokoro").base_url == "http://127.0.0.1:8880/v1"
    with pytest.raises(FailedPrecondition):
        registry.get("vllm")


def test_the_loopback_defaults_are_on_unless_the_deployment_turns_them_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`tzurot up` on one machine keeps them; a pod's config sets TZUROT_LOOPBACK_PROVIDERS."""
    assert InferenceSettings.model_fields["loopback_providers"].default is True
    monkeypatch.setenv("TZUROT_LOOPBACK_PROVIDERS", "false")
    assert InferenceSettings(tls_dir=Path("/nowhere")).loopback_providers is False
