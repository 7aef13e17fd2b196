"""The wallet (bring your own key): set, list, remove and test a user's provider keys.

Gateway never stores a key: inference checks a new key with the provider (a cheap dry-run
call), keyvault encrypts and keeps it. The plaintext exists here only for the length of one
`set` call; `test` sends inference only the user id, and inference fetches the key itself.

Provider refusals map to statuses the bot turns into friendly messages: a rejected key is
INVALID_ARGUMENT, no credits or quota RESOURCE_EXHAUSTED, an unreachable provider
UNAVAILABLE (and nothing is stored). A key the provider authenticated but restricts (an
ElevenLabs key made without the permission the check's call needs) is a working key: it is
stored, and `set` and `test` return its restriction so the user is told what it cannot do.

A key is never left behind by the user's data deletion: `set` checks she is not being
deleted, then asks the provider (seconds), and a deletion can run meanwhile. So keyvault's
write runs under `Users.key_write`, which re-reads the deletion's mark and keeps a deletion
from being recorded until keyvault answered: a deletion recorded first refuses the write
(USER_DATA_DELETING), one asked during the write waits for it and then removes that key with
her others (store/deletions.py `KeyWriteFence`). A write keyvault did not confirm (no answer
in time, a broken connection) may have landed: the user's records, read before and after it,
say whether it did, and `set` answers with that truth (key_landing.py).

A provider outside the known ones is refused before any call that would name it, with a
message that never quotes it: the commonest slip is pasting the key into the `provider`
option (`/wallet set <key>`, `/wallet remove <key>`), and the key must then reach no other
service, reply or log (keyvault would audit it; inference would quote it back). Known are
the providers inference lists (ListProviders: its registry's, the built-in ones and the
operator's `TZUROT_PROVIDERS`, and its service keys, ElevenLabs and Brave, as configured;
`InferenceProviders`), or the list given, and, for `test` and `remove`, the providers the
user holds a key for. A new key with whitespace or control characters is refused before any
call too (keyvault's rule: it could not be stored, and an HTTP client refusing it as a header
logs it whole).

A key for a provider inference says takes no key (`keyless_providers`: a local server, one
the operator declared `"keyless"`) is refused before any call, `PROVIDER_TAKES_NO_KEY` naming
it: it would never be sent, yet its owner would think she pays with it. Only inference's word
refuses (`Listed.said_keyless`), never the built-in names' guess while it cannot say. A key
stored for one before (before the refusal, or before the provider became keyless) is never
used: `test` sends it nowhere, answering FAILED_PRECONDITION `PROVIDER_TAKES_NO_KEY` that it
is never used and how to remove it, and `list` flags it (`ListedKey.takes_no_key`,
`WalletKey.takes_no_key`) on inference's last list, never waiting for it
(provider_list.py `known`).

Brave Search has no free call that proves a key (inference's wallet_keys.py): a new Brave key
is stored unchecked (inference checked its form; `KeyCheck.unchecked`), which `set` returns
(`StoredKey.unchecked`, `SetWalletKeyResponse.unchecked`) for the client to say so, and
`test` spends one search on the stored key (`KeyCheck.billed_requests`), which its detail
says.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, fields
from typing import Protocol

import structlog
from pydantic import SecretStr

from tzurot.gateway.domain import (
    Actor,
    KeyCheck,
    KeyRestriction,
    ListedKey,
    StoredKey,
    User,
    WalletKey,
)
from tzurot.gateway.key_landing import may_have_landed, read_back
from tzurot.gateway.key_uses import KeyUses
from tzurot.gateway.ports import KeyVault
from tzurot.gateway.provider_list import (
    KNOWN_PROVIDERS,
    FixedProviders,
    Listed,
    ProviderNames,
)
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

log = structlog.get_logger(__name__)

MAX_PROVIDER_CHARS = 200
MAX_API_KEY_CHARS = 4096
INVALID_API_KEY = "INVALID_API_KEY"
QUOTA_EXCEEDED = "PROVIDER_QUOTA_EXCEEDED"
RATE_LIMITED = "PROVIDER_RATE_LIMITED"
UNKNOWN_PROVIDER = "UNKNOWN_PROVIDER"
TAKES_NO_KEY = "PROVIDER_TAKES_NO_KEY"
"""The reason `set` refuses a key for a provider inference says takes no key."""

NO_PROVIDER_LIST = "inference cannot say which providers it has right now; try again in a minute"
"""UNAVAILABLE for a name outside the built-in stand-in list while inference cannot answer:
it may be the operator's own, so it is not called unknown."""


class Users(Protocol):
    async def user(self, actor: Actor) -> User:
        """The actor's user, created on first sight (with the operator's superuser list)."""
        ...

    def key_write(self, user_id: str) -> AbstractAsyncContextManager[None]:
        """Held while one of the user's keys is written: refuses USER_DATA_DELETING once her
        data deletion is recorded; none is recorded until the block ends."""
        ...


class KeyChecker(Protocol):
    async def validate_key(self, provider: str, api_key: SecretStr) -> KeyCheck:
        """What the provider says of a new key (its restriction, if any); raises a
        TzurotError when the provider rejects the key or cannot be reached."""
        ...

    async def check_stored_key(self, user_id: str, provider: str) -> KeyCheck:
        """Checks the user's stored key (inference fetches it): how many models it sees, and
        its restriction, if any."""
        ...


@dataclass(frozen=True)
class KeyTest:
    """What `wallet test` found: whether the stored key works, and why not (or, working,
    what the provider restricts it from)."""

    valid: bool
    detail: str
    restriction: KeyRestriction | None = None


class Wallet:
    """The use-cases behind the wallet RPCs."""

    def __init__(
        self,
        *,
        users: Users,
        checker: KeyChecker,
        keyvault: KeyVault,
        key_uses: KeyUses | None = None,
        providers: ProviderNames | Iterable[str] = KNOWN_PROVIDERS,
    ) -> None:
        """`providers`: those a key may be stored for; gateway passes `InferenceProviders`
        (inference's list), a fixed list stays as given."""
        self._users = users
        self._checker = checker
        self._keyvault = keyvault
        self._key_uses = key_uses
        self._providers = (
            providers if isinstance(providers, ProviderNames) else FixedProviders(providers)
        )

    async def set(
        self, actor: Actor, provider: str, api_key: SecretStr, *, skip_validation: bool
    ) -> StoredKey:
        """Checks the key with the provider, then stores it (replacing any earlier one); a
        key the provider restricts is stored too, its restriction returned. One stored without
        a check (the provider has none that is free, or `skip_validation`) says so
        (`StoredKey.unchecked`), for the user to be told."""
        _check_provider(provider)
        listed = await self._providers.listed()
        if provider not in listed.names:
            raise _unknown(listed)
        if listed.said_keyless(provider):  # it would be stored, never used nor paid with
            raise InvalidArgument(
                "provider",
                f"{provider} takes no API key; it is used without one, so none is stored",
                reason=TAKES_NO_KEY,
                metadata={"provider": provider},
            )
        _check_api_key(api_key)
        user = await self._users.user(actor)
        restriction: KeyRestriction | None = None
        unchecked = skip_validation
        if skip_validation:
            if not user.superuser:
                raise PermissionDenied("only superusers may store a key without validation")
        else:
            try:
                check = await self._checker.validate_key(provider, api_key)
            except TzurotError as exc:
                raise _rejected_key(exc, provider) from None
            restriction, unchecked = check.restriction, check.unchecked
        before = await self._stored_record(user.id, provider)  # for an unconfirmed write
        try:
            async with self._users.key_write(user.id):  # her deletion may have begun meanwhile
                record = await self._keyvault.put_key(user.id, provider, api_key)
        except TzurotError as exc:
            if not may_have_landed(exc):
                raise
            record = await read_back(
                lambda: self._stored_record(user.id, provider), provider, api_key, before, exc
            )
        log.info(
            "wallet.key_set",
            user_id=user.id,
            provider=provider,
            validated=not unchecked,
            restricted=restriction is not None,
            missing_permissions=list(restriction.missing_permissions) if restriction else [],
        )
        return StoredKey(record, restriction, unchecked=unchecked)

    async def list(self, actor: Actor) -> list[ListedKey]:
        """The user's stored keys, each flagged when inference says its provider takes no key
        (`Listed.said_keyless`, never the built-in names' guess): stored before `set` refused
        such keys, or before the provider became keyless, it is never used nor sent. The flag
        never waits on inference (`known`: its last list, refreshed in the background): this
        list, `/wallet remove`'s and `test`'s autocomplete need only keyvault."""
        user = await self._users.user(actor)
        keys = await self._keyvault.list_keys(user.id)
        listed = self._providers.known() if keys else None
        return [
            ListedKey(
                **{f.name: getattr(key, f.name) for f in fields(key)},
                takes_no_key=listed is not None and listed.said_keyless(key.provider),
            )
            for key in keys
        ]

    async def remove(self, actor: Actor, provider: str) -> None:
        _check_provider(provider)
        user = await self._users.user(actor)
        if provider not in await self._stored(user.id):  # her own key needs no inference
            listed = await self._providers.listed()
            if provider not in listed.names:
                raise _unknown(listed)  # keyvault never hears of it (nor audits it)
        if not await self._keyvault.delete_key(user.id, provider):
            raise NotFound(f"no {provider} key stored for you", reason="NO_API_KEY")
        log.info("wallet.key_removed", user_id=user.id, provider=provider)

    async def test(self, actor: Actor, provider: str) -> KeyTest:
        """Re-checks the stored key with the provider; reports a refusal or an empty quota.

        NOT_FOUND when no key is stored; UNAVAILABLE when the provider cannot say;
        FAILED_PRECONDITION `PROVIDER_TAKES_NO_KEY`, nothing sent to inference, for a provider
        inference says takes no key (`Listed.said_keyless`): a key stored for it is never used.
        """
        _check_provider(provider)
        user = await self._users.user(actor)
        stored = provider in await self._stored(user.id)
        listed = await self._providers.listed()
        if listed.said_keyless(provider):  # nothing to check: no key of hers is ever sent
            raise _takes_no_key_to_test(provider, stored=stored)
        if not stored:
            if provider not in listed.names:
                raise _unknown(listed)
            raise NotFound(
                f"no {provider} key stored for you; add one with /wallet set {provider}",
                reason="NO_API_KEY",
            )
        # The key tested is read after this: a key stored meanwhile is not the one it marks.
        taken_after = self._key_uses.now() if self._key_uses is not None else None
        try:
            check = await self._checker.check_stored_key(user.id, provider)
        except TzurotError as exc:
            if exc.reason == INVALID_API_KEY:
                if self._key_uses is not None:
                    await self._key_uses.rejected(user.id, provider, taken_after=taken_after)
                return KeyTest(False, f"the key was rejected by {provider}")
            if exc.reason == QUOTA_EXCEEDED:
                return KeyTest(False, f"no credits or quota left on this key at {provider}")
            if exc.reason == RATE_LIMITED:
                return KeyTest(True, f"the key works, but {provider} is rate limiting it now")
            raise
        if self._key_uses is not None:  # it works: active again, and used just now
            self._key_uses.used(user.id, provider, taken_after=taken_after)
            await self._key_uses.flush()
        if check.restriction is not None:
            return KeyTest(
                True,
                f"the key works, but {provider} restricts it: {_lacks(check.restriction)}",
                check.restriction,
            )
        if check.billed_requests:
            spent = check.billed_requests
            return KeyTest(
                True,
                f"the key works ({provider} has no free check: this test spent "
                f"{'one billed request' if spent == 1 else f'{spent} billed requests'} on it)",
            )
        return KeyTest(True, f"the key works ({check.models} models visible)")

    async def _stored_record(self, user_id: str, provider: str) -> WalletKey | None:
        keys = await self._keyvault.list_keys(user_id)
        return next((key for key in keys if key.provider == provider), None)

    async def _stored(self, user_id: str) -> frozenset[str]:
        """The providers the user holds a key for (keyvault's ListKeys names no provider)."""
        return frozenset(key.provider for key in await self._keyvault.list_keys(user_id))


def _unknown(listed: Listed) -> TzurotError:
    """The refusal of a provider outside the known ones: it never quotes what was given,
    which is often the key itself, pasted into the wrong field. UNAVAILABLE while inference
    cannot say (`NO_PROVIDER_LIST`): the name may be the operator's own."""
    if not listed.answered:
        return Unavailable(NO_PROVIDER_LIST)
    return InvalidArgument(
        "provider",
        f"unknown provider; known: {', '.join(sorted(listed.names))}",
        reason=UNKNOWN_PROVIDER,
    )


def _takes_no_key_to_test(provider: str, *, stored: bool) -> TzurotError:
    """`test` of a provider inference says takes no key: FAILED_PRECONDITION
    `PROVIDER_TAKES_NO_KEY`, saying a key stored for it (before `set` refused one, or before
    the provider became keyless) is never used, and how to delete it."""
    if stored:
        text = (
            f"{provider} takes no API key: your stored {provider} key is never used, so it "
            f"was not tested; /wallet remove {provider} deletes it"
        )
    else:
        text = f"{provider} takes no API key; there is no key to test"
    return FailedPrecondition(text, reason=TAKES_NO_KEY, metadata={"provider": provider})


def _lacks(restriction: KeyRestriction) -> str:
    """What a restricted key lacks, by the provider's permission names (never the key)."""
    named = ", ".join(restriction.missing_permissions)
    return f"it lacks {named}" if named else "it lacks a permission"


def _rejected_key(exc: TzurotError, provider: str) -> TzurotError:
    """A refused new key is the caller's bad input: INVALID_ARGUMENT naming `api_key`."""
    if exc.reason == INVALID_API_KEY and isinstance(exc, FailedPrecondition | InvalidArgument):
        return InvalidArgument(
            "api_key",
            f"the key was rejected by {provider}",
            reason=INVALID_API_KEY,
            metadata={"provider": provider},
        )
    if exc.reason == QUOTA_EXCEEDED and isinstance(exc, ResourceExhausted):
        return ResourceExhausted(
            f"{provider} accepted the key but it has no credits or quota left",
            reason=QUOTA_EXCEEDED,
            metadata={"provider": provider},
        )
    return exc


def _check_api_key(api_key: SecretStr) -> None:
    """A new key's shape, before any call; never quoting it. The same rule as keyvault's
    `check_api_key` (tzurot.keyvault.validation), mirrored here as gateway does not depend on
    keyvault's package; ASCII too, as the key travels in an HTTP header."""
    key = api_key.get_secret_value()
    if not key.strip():
        raise InvalidArgument("api_key", "the API key is empty")
    if len(key) > MAX_API_KEY_CHARS:
        raise InvalidArgument("api_key", f"the API key is longer than {MAX_API_KEY_CHARS}")
    if not key.isascii():
        raise InvalidArgument("api_key", "the API key must be ASCII")
    if not all(char.isprintable() and not char.isspace() for char in key):
        raise InvalidArgument(
            "api_key", "the API key must not contain whitespace or control characters"
        )


def _check_provider(provider: str) -> None:
    if not provider.strip():
        raise InvalidArgument("provider", "provider is required")
    if len(provider) > MAX_PROVIDER_CHARS:
        raise InvalidArgument(
            "provider", f"provider is longer than {MAX_PROVIDER_CHARS} characters"
        )
