"""`SetWalletKey` says when a key was stored without a check (`unchecked`): the provider has
no free one (Brave Search), or a superuser skipped it. A key the provider checked is not."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from pydantic import SecretStr

from tzurot.gateway.admin import Admin
from tzurot.gateway.domain import Actor, KeyCheck, KeyUse, User, WalletKey
from tzurot.gateway.group_server import GatewayGroupServicer, GroupFeatures
from tzurot.gateway.service import Gateway
from tzurot.gateway.wallet import Wallet
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

PLANTED = "plantedKEYzq7Wm3Xv9Rt2Lp8Ny4"
UNCHECKABLE = frozenset({"brave"})
"""Providers whose fake check answers as inference does for Brave: only its form checked."""


class Users:
    def __init__(self, *, superuser: bool = False) -> None:
        self.superuser = superuser

    async def user(self, actor: Actor) -> User:
        return User(
            id="00000000-0000-4000-8000-000000000001",
            platform_user_id=actor.platform_user_id,
            display_name=actor.display_name,
            timezone="UTC",
            superuser=self.superuser,
            nsfw_verified=False,
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
        )

    @asynccontextmanager
    async def key_write(self, user_id: str) -> AsyncIterator[None]:
        yield


class Checker:
    def __init__(self) -> None:
        self.validated: list[str] = []

    async def validate_key(self, provider: str, api_key: SecretStr) -> KeyCheck:
        self.validated.append(provider)
        if provider in UNCHECKABLE:
            return KeyCheck(unchecked=True)
        return KeyCheck(models=3)

    async def check_stored_key(self, user_id: str, provider: str) -> KeyCheck:
        raise AssertionError("set never tests a stored key")


class Vault:
    def __init__(self) -> None:
        self.stored: list[str] = []

    async def put_key(self, user_id: str, provider: str, api_key: SecretStr) -> WalletKey:
        self.stored.append(provider)
        return WalletKey(
            provider=provider,
            created_at=None,
            last_used_at=None,
            hint=api_key.get_secret_value()[-4:],
        )

    async def list_keys(self, user_id: str) -> list[WalletKey]:
        return []

    async def delete_key(self, user_id: str, provider: str) -> bool:
        return False

    async def record_uses(self, uses: Sequence[KeyUse]) -> None:
        return None


def servicer(*, superuser: bool = False) -> tuple[GatewayGroupServicer, Checker, Vault]:
    checker, vault = Checker(), Vault()
    wallet = Wallet(users=Users(superuser=superuser), checker=checker, keyvault=vault)
    served = GatewayGroupServicer(  # the servicer gateway serves (app.py), the wallet only
        cast(Gateway, None), wallet, cast(Admin, None), cast(GroupFeatures, None)
    )
    return served, checker, vault


def request(provider: str, *, skip_validation: bool = False) -> gw.SetWalletKeyRequest:
    return gw.SetWalletKeyRequest(
        actor=common.Actor(user_id="42", display_name="Alice"),
        provider=provider,
        api_key=PLANTED,
        skip_validation=skip_validation,
    )


@pytest.mark.parametrize(
    ("provider", "unchecked"), [("brave", True), ("openrouter", False), ("elevenlabs", False)]
)
async def test_set_says_whether_the_key_was_stored_unchecked(
    provider: str, unchecked: bool
) -> None:
    served, checker, vault = servicer()
    reply = await served.SetWalletKey(request(provider), cast(Any, None))
    assert reply.unchecked is unchecked
    assert (reply.key.provider, reply.key.hint) == (provider, PLANTED[-4:])
    assert checker.validated == [provider]
    assert vault.stored == [provider]
    assert PLANTED not in str(reply)


async def test_a_key_a_superuser_stored_without_validation_is_unchecked() -> None:
    served, checker, vault = servicer(superuser=True)
    reply = await served.SetWalletKey(request("openrouter", skip_validation=True), cast(Any, None))
    assert reply.unchecked
    assert checker.validated == []
    assert vault.stored == ["openrouter"]


async def test_the_wallet_returns_unchecked_with_the_stored_key() -> None:
    checker, vault = Checker(), Vault()
    wallet = Wallet(users=Users(), checker=checker, keyvault=vault)
    actor = Actor(platform_user_id="42", display_name="Alice")
    stored = await wallet.set(actor, "brave", SecretStr(PLANTED), skip_validation=False)
    assert (stored.key.provider, stored.unchecked, stored.restriction) == ("brave", True, None)
    checked = await wallet.set(actor, "openai", SecretStr(PLANTED), skip_validation=False)
    assert not checked.unchecked
