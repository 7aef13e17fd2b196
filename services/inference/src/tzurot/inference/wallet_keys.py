"""The wallet as inference sees it: which providers a user may hold a key for, and the check
of a Brave Search key.

Inference alone knows its providers (its registry's built-in ones and the operator's
`TZUROT_PROVIDERS`), whether it speaks (ElevenLabs, with the user's key) and which search
engine web_research uses: `wallet_providers` is what ListProviders answers, and gateway's
wallet stores a key for nothing else; `speech_providers`, which of them a voice may name.

Brave Search has no free call that proves a key: every request is a search, billed to the key
(its API has no account or key endpoint). So a new key (`/wallet set brave`) is checked for its
form only and reported `unchecked`: it is proven at its first search. A stored key
(`/wallet test brave`) is proven with one search (count=1) against the configured Brave URL,
reported as one billed request; a key Brave refuses is INVALID_API_KEY named as the user's
(gateway then marks it inactive, as for any provider).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import SecretStr

from tzurot.inference.key_checks import _check_api_key
from tzurot.inference.keys import KeyResolver, no_api_key, refusal_names_key
from tzurot.inference.skills.search import BRAVE, BraveSearch
from tzurot.inference.speech import ELEVENLABS
from tzurot.runtime.errors import InvalidArgument


@dataclass(frozen=True)
class ServiceKeyCheck:
    """What checking a service's key did: nothing but its form (`unchecked`), or how many
    billed requests proving it took."""

    unchecked: bool = False
    billed_requests: int = 0


class BraveKeys:
    """The wallet's Brave Search keys. `offered`: web_research searches with Brave (the
    operator's `TZUROT_SEARCH_BACKEND=brave`); only then may a new key be stored, but a stored
    one can always be checked."""

    def __init__(self, search: BraveSearch, keys: KeyResolver, *, offered: bool) -> None:
        self._search = search
        self._keys = keys
        self.offered = offered

    async def check_key(self, api_key: SecretStr) -> ServiceKeyCheck:
        """A new key: its form only (no search is spent on it before it is even stored)."""
        _check_api_key(api_key)
        return ServiceKeyCheck(unchecked=True)

    async def check_stored_key(self, user_id: str) -> ServiceKeyCheck:
        """The user's stored key, proven with one search (count=1) billed to it."""
        if not user_id:
            raise InvalidArgument("user_id", "user_id is required")
        key = await self._keys.service_key(user_id, BRAVE)
        if key is None:
            raise no_api_key(BRAVE)
        with refusal_names_key(BRAVE, "user"):
            await self._search.check_key(key)
        return ServiceKeyCheck(billed_requests=1)


def speech_providers(registry_speech: Iterable[str], *, voice: bool) -> list[str]:
    """The providers a voice may name, sorted: ElevenLabs and the registry's providers that
    serve `/audio/speech` (built in, or the operator's declared `speech`); none when voice is
    not served."""
    return sorted({ELEVENLABS, *registry_speech}) if voice else []


def wallet_providers(llm_providers: Iterable[str], *, voice: bool, brave: bool) -> list[str]:
    """The providers a user may hold a key for, sorted: the LLM providers, ElevenLabs when
    voice is served, Brave when web_research searches with it."""
    names = set(llm_providers)
    if voice:
        names.add(ELEVENLABS)
    if brave:
        names.add(BRAVE)
    return sorted(names)


__all__ = ["BraveKeys", "ServiceKeyCheck", "speech_providers", "wallet_providers"]
