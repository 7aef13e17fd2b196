"""Which providers a wallet key may be stored for, as inference lists them (ListProviders):
their names, those that speak, those that take no key; asked at most once a minute, with the
last answer (or the built-in names) standing in while inference cannot say.

`InferenceProviders.listed` may wait on inference (a cold or stale list: one question, up to
its deadline); `known` never does: it gives the last answer at once, refreshing a stale one
in the background, for what is only shown (`/wallet list`'s `takes_no_key`), which must not
slow down with inference (an autocomplete has 3 s)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol, runtime_checkable

import structlog

from tzurot.gateway.voice import LOCAL_SPEECH_PROVIDERS
from tzurot.runtime.errors import TzurotError

log = structlog.get_logger(__name__)

KNOWN_PROVIDERS: frozenset[str] = frozenset(
    {
        # inference's built-in providers (tzurot.inference.providers.DEFAULT_PROVIDERS)
        "openrouter",
        "openai",
        "anthropic",
        "gemini",
        "ollama",
        "vllm",
        "lmstudio",
        "kokoro",
        "openedai-speech",
        # the wallet's service keys: voice (inference speech.py) and web search (skills)
        "elevenlabs",
        "brave",
    }
)
"""The built-in providers a key may be stored for: inference's built-in LLM providers and the
wallet's service keys. The wallet asks inference for its own list (`InferenceProviders`, which
has the operator's `TZUROT_PROVIDERS` too); this one stands in when inference cannot say."""

PROVIDERS_TTL_SECONDS = 60.0
"""How long a process trusts inference's list of providers before asking again."""
PROVIDERS_RETRY_SECONDS = 5.0
"""After inference could not answer, how long a process goes without asking again (serving
its last list meanwhile): an outage costs one question in that time, not one per caller."""
KEYED_PROVIDERS: frozenset[str] = frozenset(
    {"openrouter", "openai", "anthropic", "gemini", "elevenlabs", "brave"}
)
"""The built-in providers paid with a key (inference's hosted ones and the wallet's service
keys): while inference has never said otherwise, they take one."""


class ProviderList(NamedTuple):
    """Inference's ListProviders: the providers a key may be stored for, those of them that
    speak and those that take no key."""

    names: frozenset[str]
    speech: frozenset[str] | None = None
    """Those that synthesise speech, which a voice may name (speech_providers); None when
    inference did not say: one older than that field, or the built-in list standing in."""
    keyless: frozenset[str] | None = None
    """Those that take no key (keyless_providers); None when inference did not say
    (`Listed.takes_no_key` then goes by the built-in names)."""


class Listed(NamedTuple):
    """The providers known now, and whether inference said so (`answered`) or the built-in
    list stands in while it cannot: a name outside that list may then be the operator's."""

    providers: ProviderList
    answered: bool

    @property
    def names(self) -> frozenset[str]:
        return self.providers.names

    @property
    def speech(self) -> frozenset[str] | None:
        return self.providers.speech

    @property
    def keyless(self) -> frozenset[str] | None:
        return self.providers.keyless

    def takes_no_key(self, provider: str) -> bool:
        """Whether `provider` asks nobody for a key (a local server, or one the operator
        declared `"keyless"`): a user without a key is then no guest, and free will asks its
        payer for none. Inference's word when it said; else only the built-in local speech
        servers (`voice.LOCAL_SPEECH_PROVIDERS`), as before inference said it."""
        keyless = frozenset(LOCAL_SPEECH_PROVIDERS) if self.keyless is None else self.keyless
        return provider in keyless

    def said_keyless(self, provider: str) -> bool:
        """Inference said `provider` takes no key (its keyless_providers, this answer's or
        its last): never the built-in names' guess, which an operator may have overridden."""
        return self.keyless is not None and provider in self.keyless

    def keyless_of(self, provider: str) -> bool | None:
        """`takes_no_key`, or None when nobody can say: inference never answered (the
        built-in stand-in list) and `provider` is neither a built-in keyed one
        (`KEYED_PROVIDERS`, False) nor a built-in local speech server (True)."""
        if self.answered or provider in KEYED_PROVIDERS:
            return self.takes_no_key(provider)
        return True if provider in LOCAL_SPEECH_PROVIDERS else None


@runtime_checkable
class ProviderNames(Protocol):
    async def names(self) -> frozenset[str]:
        """The providers a key may be stored for, now."""
        ...

    async def listed(self) -> Listed:
        """The same, with whether inference answered."""
        ...

    def known(self) -> Listed:
        """`listed` as last known, at once: never waits on inference."""
        ...


class ProviderLister(Protocol):
    async def list_providers(self) -> ProviderList:
        """Inference's ListProviders; raises a TzurotError when inference cannot answer."""
        ...


class FixedProviders:
    """A list of providers that does not change (tests, and an operator's fixed setup)."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = frozenset(names)

    async def names(self) -> frozenset[str]:
        return self._names

    async def listed(self) -> Listed:
        return self.known()

    def known(self) -> Listed:
        return Listed(ProviderList(self._names), answered=True)


class InferenceProviders:
    """The providers a key may be stored for, as inference lists them (ListProviders), asked
    at most once every `ttl` seconds in this process.

    Inference is the authority: gateway cannot see its configuration (each service has its
    own), so a provider the operator adds there with `TZUROT_PROVIDERS` is known here within
    `ttl`. When inference cannot answer (down, restarting, denied, or an older inference
    without ListProviders), its last answer stands (the list changes only when inference is
    redeployed), else the built-in list `fallback` (`KNOWN_PROVIDERS`): set, test and remove
    of the built-in providers keep working (set still needs inference to check the key;
    remove needs no inference at all), an operator's own provider is UNAVAILABLE ("try
    again") until inference answers, not unknown (but test and remove of one the user
    already holds a key for still work); `listed` says which of the two a list is.

    One question at a time: callers meanwhile take the last answer, or, with none yet, wait
    for the question's outcome. A failure is kept `retry` seconds (one warning each), so an
    outage costs one question per `retry`, not one per caller (every admission of a user
    without a key on a free config asks)."""

    def __init__(
        self,
        inference: ProviderLister,
        *,
        ttl: float = PROVIDERS_TTL_SECONDS,
        retry: float = PROVIDERS_RETRY_SECONDS,
        fallback: Iterable[str] = KNOWN_PROVIDERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inference = inference
        self._ttl = ttl
        self._retry = retry
        self._fallback = Listed(ProviderList(frozenset(fallback)), answered=False)
        self._clock = clock
        self._known: Listed | None = None
        self._until = 0.0  # what is kept (an answer, or a failure) stands until then
        self._asking = asyncio.Lock()
        self._refreshing: asyncio.Task[None] | None = None
        self._stopped = False

    async def names(self) -> frozenset[str]:
        return (await self.listed()).names

    async def listed(self) -> Listed:
        if self._clock() < self._until or (self._asking.locked() and self._known is not None):
            return self._kept()
        async with self._asking:  # those waiting take its outcome, answer or failure
            if self._clock() < self._until:
                return self._kept()
            try:
                answer = await self._inference.list_providers()
            except TzurotError as exc:
                self._until = self._clock() + self._retry
                log.warning(
                    "wallet.providers_unavailable",
                    code=exc.code.name,
                    reason=exc.reason,
                    using="built-in providers" if self._known is None else "the last list",
                    retry_in_seconds=self._retry,
                )
                return self._kept()
            self._known = Listed(answer, answered=True)
            self._until = self._clock() + self._ttl
            return self._known

    def known(self) -> Listed:
        """Inference's last answer (else the built-in stand-in list), at once, never waiting
        on inference: when it is stale (or there is none yet), `listed` asks again in the
        background (one question at a time, a failure kept `retry` seconds, as always), for
        a later call to see."""
        if (
            not self._stopped
            and self._clock() >= self._until
            and (self._refreshing is None or self._refreshing.done())
        ):
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        return self._kept()

    async def stop(self) -> None:
        """At the gateway's stop, before inference's channel closes (app.py): cancels the
        background refresh still asking, and `known` starts none after (one would fail on
        the closed channel, logged as an error with its traceback on every such stop)."""
        self._stopped = True
        refreshing, self._refreshing = self._refreshing, None
        if refreshing is not None and not refreshing.done():
            refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refreshing

    async def _refresh(self) -> None:
        """`listed` in the background (cancelled by `stop`, before inference's channel closes).
        Anything but inference's own failure (which `listed` keeps and logs), a bug: kept
        `retry` seconds too, logged as an error, or each later call would ask again."""
        try:
            await self.listed()
        except Exception:
            self._until = self._clock() + self._retry
            log.exception("wallet.providers_refresh_failed", retry_in_seconds=self._retry)

    def _kept(self) -> Listed:
        """Inference's last answer, else the built-in stand-in list."""
        return self._fallback if self._known is None else self._known
