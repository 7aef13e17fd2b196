"""Which OpenAI-compatible endpoints inference knows, by name.

A provider is a base URL speaking the OpenAI chat-completions protocol. The defaults cover
OpenRouter, OpenAI, Anthropic and Gemini (their OpenAI-compatible endpoints) and the local
servers Ollama, vLLM and LM Studio (no key); the operator adds or overrides names with
`TZUROT_PROVIDERS` (a JSON object, name -> base URL, or name -> a declaration
`{"base_url": …, "speech": true, "keyless": true}`). How each is spoken to (which
parameters, how reasoning is asked for) is dialects.py's job.

What a provider is for, and whether it needs the user's key, is the operator's word where
declared: `speech` (it serves OpenAI's `/audio/speech`, so a voice may name it) and `keyless`
(no key is asked of anyone: a local server). ListProviders tells the gateway both
(`speech_names`, `keyless_names`), so it asks nobody for a key inference does not need.
Undeclared, the built-in names say it: `openai`, `kokoro` and `openedai-speech` speak; the
local servers (`LOCAL_PROVIDERS`) are keyless; a name the operator adds neither speaks nor
goes without a key until declared so.

The local servers' defaults are this host's loopback, right for `tzurot up` on one machine.
In a pod nothing listens there: with `TZUROT_LOOPBACK_PROVIDERS=false` (the Kubernetes
manifests) a local provider is offered only once `TZUROT_PROVIDERS` gives it an address, and
asking for it before says so instead of timing out on a connection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from tzurot.runtime.errors import (
    PROVIDER_NOT_CONFIGURED,
    FailedPrecondition,
    InvalidArgument,
    StartupError,
)

OLLAMA = "ollama"
OLLAMA_PLACEHOLDER_KEY = "ollama"
"""Local servers ignore the key, but the OpenAI client insists on sending one."""
LOCAL_PROVIDERS = frozenset({OLLAMA, "vllm", "lmstudio", "kokoro", "openedai-speech"})

DEFAULT_PROVIDERS: Mapping[str, str] = {
    "openrouter": "https://openrouter.ai/api/v1",
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai",
    OLLAMA: "http://127.0.0.1:11434/v1",
    "vllm": "http://127.0.0.1:8000/v1",
    "lmstudio": "http://127.0.0.1:1234/v1",
    # Local OpenAI-compatible speech servers (voice; /audio/speech only, no key).
    "kokoro": "http://127.0.0.1:8880/v1",
    "openedai-speech": "http://127.0.0.1:8000/v1",
}
SPEECH_PROVIDERS = frozenset({"openai", "kokoro", "openedai-speech"})
"""The built-in providers that serve `/audio/speech` (ElevenLabs, its own API, is no registry
provider: voice.py speaks to it by name)."""

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # keyvault's provider rule


KEY_CHECK_PATHS = {"openrouter": "/key"}
"""OpenRouter lists models to anyone; GET /key answers 401 for a bad key and shows its credit."""


class Declared(Protocol):
    """An operator's `TZUROT_PROVIDERS` entry in its object form (config.ProviderSetting):
    `speech` and `keyless` are None where it does not say."""

    @property
    def base_url(self) -> str: ...
    @property
    def speech(self) -> bool | None: ...
    @property
    def keyless(self) -> bool | None: ...


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str
    keyless: bool | None = None
    """The operator's `"keyless"`; None: the built-in rule (the local servers need no key)."""
    speech: bool | None = None
    """The operator's `"speech"`; None: the built-in rule (`SPEECH_PROVIDERS`)."""

    @property
    def needs_key(self) -> bool:
        """Whether the call is paid with a key (the user's, or the operator's for free_use);
        a keyless provider is sent a placeholder and no listener is asked for a key."""
        if self.keyless is not None:
            return not self.keyless
        return self.name not in LOCAL_PROVIDERS

    @property
    def speaks(self) -> bool:
        """Whether it serves `/audio/speech`, so a voice may name it."""
        if self.speech is not None:
            return self.speech
        return self.name in SPEECH_PROVIDERS

    @property
    def key_check_path(self) -> str | None:
        """An authenticated endpoint proving a key, for providers whose model list is public."""
        return KEY_CHECK_PATHS.get(self.name)


class ProviderRegistry:
    """The known providers: the defaults, then the operator's additions and overrides.

    `loopback_defaults=False` (inference runs where its loopback serves no model: a pod)
    leaves out the local providers the operator did not give an address: they are not listed,
    and `get` tells the caller what the operator must set."""

    def __init__(
        self,
        overrides: Mapping[str, str | Declared] | None = None,
        *,
        loopback_defaults: bool = True,
    ) -> None:
        merged = {name: Provider(name, url) for name, url in DEFAULT_PROVIDERS.items()}
        for name, given in (overrides or {}).items():
            merged[_check_name(name)] = _provider(name, given)
        given_names = set(overrides or {})  # a loopback address given on purpose (a sidecar)
        self._unconfigured = (
            {}
            if loopback_defaults
            else {n: DEFAULT_PROVIDERS[n] for n in LOCAL_PROVIDERS - given_names}
        )
        self._providers = {
            name: provider for name, provider in merged.items() if name not in self._unconfigured
        }

    @property
    def names(self) -> list[str]:
        return sorted(self._providers)

    @property
    def speech_names(self) -> list[str]:
        """The providers listed that serve `/audio/speech` (`Provider.speaks`), sorted."""
        return sorted(name for name, provider in self._providers.items() if provider.speaks)

    @property
    def keyless_names(self) -> list[str]:
        """The providers listed that take no key (`Provider.needs_key` false), sorted."""
        return sorted(name for name, provider in self._providers.items() if not provider.needs_key)

    def get(self, name: str) -> Provider:
        """The provider called `name`; FailedPrecondition for a local one left at this pod's
        loopback, InvalidArgument naming the known ones for any other."""
        provider = self._providers.get(name)
        if provider is None and name in self._unconfigured:
            raise FailedPrecondition(
                f"provider {name!r} is not set up on this server: its default address "
                f"{self._unconfigured[name]} is the answering service's own loopback, where "
                f"nothing runs in this deployment; the operator must give it its server's "
                f"address (TZUROT_PROVIDERS)",
                reason=PROVIDER_NOT_CONFIGURED,
                metadata={"provider": name},
            )
        if provider is None:
            known = ", ".join(self.names)
            raise InvalidArgument(
                "provider",
                f"unknown provider {name!r}; known: {known}",
                reason="UNKNOWN_PROVIDER",
                metadata={"provider": name[:64]},
            )
        return provider


def _provider(name: str, given: str | Declared) -> Provider:
    """The operator's entry: a base URL, or a declaration of one with what it is for."""
    if isinstance(given, str):
        return Provider(name, _check_base_url(name, given))
    return Provider(
        name, _check_base_url(name, given.base_url), keyless=given.keyless, speech=given.speech
    )


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise StartupError(
            f"TZUROT_PROVIDERS: provider name {name!r} must be lowercase letters, digits, _ . or -"
        )
    return name


def _check_base_url(name: str, base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StartupError(f"TZUROT_PROVIDERS: base URL of {name!r} must be an http(s) URL")
    if parts.username or parts.password:
        # A credential in the URL would be logged and sent to every caller of the provider.
        raise StartupError(f"TZUROT_PROVIDERS: base URL of {name!r} must not carry credentials")
    return base_url.rstrip("/")
