"""The wallet (bring your own key): set, list and remove a user's provider keys.

Gateway never stores a key: inference checks a new key with the provider, keyvault
encrypts and keeps it. The plaintext exists here only for the length of one `set` call.
"""

from __future__ import annotations

from typing import Protocol

import structlog
from pydantic import SecretStr

from tzurot.gateway.domain import Actor, User, WalletKey
from tzurot.gateway.ports import KeyVault
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied

log = structlog.get_logger(__name__)

MAX_PROVIDER_CHARS = 200
MAX_API_KEY_CHARS = 4096


class Users(Protocol):
    async def upsert_user(self, actor: Actor) -> User: ...


class KeyChecker(Protocol):
    async def validate_key(self, provider: str, api_key: SecretStr) -> None:
        """Raises a TzurotError when the provider rejects the key or cannot be reached."""
        ...


class Wallet:
    """The use-cases behind the wallet RPCs."""

    def __init__(self, *, users: Users, checker: KeyChecker, keyvault: KeyVault) -> None:
        self._users = users
        self._checker = checker
        self._keyvault = keyvault

    async def set(
        self, actor: Actor, provider: str, api_key: SecretStr, *, skip_validation: bool
    ) -> WalletKey:
        """Checks the key with the provider, then stores it (replacing any earlier one)."""
        _check_provider(provider)
        key = api_key.get_secret_value()
        if not key.strip():
            raise InvalidArgument("api_key", "the API key is empty")
        if len(key) > MAX_API_KEY_CHARS:
            raise InvalidArgument("api_key", f"the API key is longer than {MAX_API_KEY_CHARS}")
        user = await self._users.upsert_user(actor)
        if skip_validation:
            if not user.superuser:
                raise PermissionDenied("only superusers may store a key without validation")
        else:
            await self._checker.validate_key(provider, api_key)
        return await self._keyvault.put_key(user.id, provider, api_key)

    async def list(self, actor: Actor) -> list[WalletKey]:
        user = await self._users.upsert_user(actor)
        return await self._keyvault.list_keys(user.id)

    async def remove(self, actor: Actor, provider: str) -> None:
        _check_provider(provider)
        user = await self._users.upsert_user(actor)
        if not await self._keyvault.delete_key(user.id, provider):
            raise NotFound(f"no {provider} key stored for you", reason="NO_API_KEY")


def _check_provider(provider: str) -> None:
    if not provider.strip():
        raise InvalidArgument("provider", "provider is required")
    if len(provider) > MAX_PROVIDER_CHARS:
        raise InvalidArgument(
            "provider", f"provider is longer than {MAX_PROVIDER_CHARS} characters"
        )
