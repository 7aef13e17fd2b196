"""Whose API key pays for a call: the user's, else the operator's for free models, else none.

The operator's system key pays only when both agree: the personality's config says
`free_use`, and the model matches one of the operator's free-model patterns
(`TZUROT_FREE_MODELS`, shell-style globs; default `*:free`, OpenRouter's free tier). A
personality any user can import thus cannot spend the operator's money on a paid model.

The key stays a SecretStr until the moment the provider client needs it; it never goes into
a log, an error message or a repr. A provider's refusal of a key says whose it was
(`refusal_names_key`), so gateway can mark a key of the user's wallet inactive; so does a
failed reply's error for the wallet keys a skill's service refused before (`refusals_named`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from fnmatch import fnmatchcase

from pydantic import SecretStr

from tzurot.inference.domain import KeySource, ResolvedKey
from tzurot.inference.ports import KeyDecryptor
from tzurot.inference.providers import OLLAMA_PLACEHOLDER_KEY, Provider
from tzurot.runtime.errors import FailedPrecondition, TzurotError


def no_api_key(provider: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"no API key for {provider}; add one with /wallet set {provider}",
        reason="NO_API_KEY",
        metadata={"provider": provider},
    )


@contextmanager
def refusal_names_key(provider: str, source: KeySource) -> Iterator[None]:
    """`provider`'s INVALID_API_KEY raised inside says whose key it refused (`key_source`):
    gateway marks the user's stored key inactive for "user" only. Any other refusal (quota,
    rate limit, a permission the key lacks, unreachable) is left as it is."""
    try:
        yield
    except TzurotError as err:
        if err.reason == "INVALID_API_KEY" and err.metadata.get("provider") == provider:
            err.metadata["key_source"] = source
        raise


REFUSED_KEY_PROVIDERS = "refused_key_providers"
"""The error metadata naming (comma-separated) the wallet keys a failed reply saw refused."""


@contextmanager
def refusals_named(refused: Callable[[], Iterable[str]]) -> Iterator[None]:
    """A TzurotError raised inside names the keys `refused()` gives then (metadata
    `refused_key_providers`, sorted, comma-separated): wallet keys a skill's service refused
    (401) before the reply failed, which no ReplyFinished will carry now. Gateway marks them
    inactive all the same. Provider names only, never a key; any other exception is left
    as it is."""
    try:
        yield
    except TzurotError as err:
        named = {n for n in err.metadata.get(REFUSED_KEY_PROVIDERS, "").split(",") if n}
        named.update(refused())
        if named:
            err.metadata[REFUSED_KEY_PROVIDERS] = ",".join(sorted(named))
        raise


def refused_user_key(err: TzurotError) -> str | None:
    """The provider whose key from the user's own wallet `err` says it refused (named so by
    `refusal_names_key`); None for any other failure. For a refusal a call goes on without
    (a transcript's clean-up), reported to gateway so that key turns inactive all the same."""
    if err.reason != "INVALID_API_KEY" or err.metadata.get("key_source") != "user":
        return None
    return err.metadata.get("provider") or None


DEFAULT_FREE_MODELS = ("*:free",)

_user_keys_used: ContextVar[set[str] | None] = ContextVar("user_keys_used", default=None)


def track_user_key_uses() -> set[str]:
    """From now on in this request (and the tasks it starts), every key taken from the user's
    own wallet adds its provider name to the returned set."""
    used: set[str] = set()
    _user_keys_used.set(used)
    return used


def _note_use(name: str) -> None:
    used = _user_keys_used.get()
    if used is not None:
        used.add(name)


class KeyResolver:
    def __init__(
        self,
        vault: KeyDecryptor,
        system_keys: Mapping[str, SecretStr] | None = None,
        free_models: Iterable[str] = ("*",),
    ) -> None:
        self._vault = vault
        self._system_keys = {
            name: key for name, key in (system_keys or {}).items() if key.get_secret_value()
        }
        self._free_models = tuple(free_models)

    def is_free_model(self, model: str) -> bool:
        """Whether the operator lets `model` run on a system key (for free_use configs)."""
        return any(fnmatchcase(model, pattern) for pattern in self._free_models)

    async def resolve(
        self, user_id: str, provider: Provider, *, free_use: bool, model: str = ""
    ) -> ResolvedKey:
        """The key for this call; FailedPrecondition NO_API_KEY when there is none to use.

        A provider that needs no key (a local Ollama) gets a placeholder, source "none".
        """
        if not provider.needs_key:
            return ResolvedKey(SecretStr(OLLAMA_PLACEHOLDER_KEY), "none")
        stored = await self._vault.decrypt(user_id, provider.name)
        if stored is not None and stored.get_secret_value():
            _note_use(provider.name)
            return ResolvedKey(stored, "user")
        system = self._system_keys.get(provider.name)
        if free_use and system is not None and self.is_free_model(model):
            return ResolvedKey(system, "system")
        raise no_api_key(provider.name)

    async def user_key(self, user_id: str, provider: Provider) -> SecretStr:
        """The user's own stored key (for `wallet test`); never the operator's."""
        if not provider.needs_key:
            return SecretStr(OLLAMA_PLACEHOLDER_KEY)
        stored = await self._vault.decrypt(user_id, provider.name)
        if stored is None or not stored.get_secret_value():
            raise no_api_key(provider.name)
        return stored

    async def service_key(self, user_id: str, name: str) -> SecretStr | None:
        """A non-LLM service key from the user's wallet (e.g. "brave"); None when absent.
        Never the operator's: a paid service is paid by the user who asked."""
        stored = await self._vault.decrypt(user_id, name)
        if stored is None or not stored.get_secret_value():
            return None
        _note_use(name)
        return stored
