"""Which OpenAI-compatible endpoints inference knows, by name.

A provider is a base URL speaking the OpenAI chat-completions protocol. The defaults cover
OpenRouter, OpenAI, Anthropic and Gemini (their OpenAI-compatible endpoints) and the local
servers Ollama, vLLM and LM Studio (no key); the operator adds or overrides names with
`TZUROT_PROVIDERS` (a JSON object, name -> base URL). How each is spoken to (which
parameters, how reasoning is asked for) is dialects.py's job.

The local servers' defaults are this host's loopback, right for `tzurot up` on one machine.
In a pod nothing listens there: with `TZUROT_LOOPBACK_PROVIDERS=false` (the Kubernetes
manifests) a local provider is offered only once `TZUROT_PROVIDERS` gives it an address, and
asking for it before says so instead of timing out on a connection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
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

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # keyvault's provider rule


KEY_CHECK_PATHS = {"openrouter": "/key"}
"""OpenRouter lists models to anyone; GET /key answers 401 for a bad key and shows its credit."""


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str

    @property
    def needs_key(self) -> bool:
        return self.name not in LOCAL_PROVIDERS

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
        self, overrides: Mapping[str, str] | None = None, *, loopback_defaults: bool = True
    ) -> None:
        merged = dict(DEFAULT_PROVIDERS)
        for name, base_url in (overrides or {}).items():
            merged[_check_name(name)] = _check_base_url(name, base_url)
        given = set(overrides or {})  # a loopback address given on purpose (a sidecar) stays
        self._unconfigured = (
            {} if loopback_defaults else {n: DEFAULT_PROVIDERS[n] for n in LOCAL_PROVIDERS - given}
        )
        self._providers = {
            name: Provider(name, url)
            for name, url in merged.items()
            if name not in self._unconfigured
        }

    @property
    def names(self) -> list[str]:
        return sorted(self._providers)

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
