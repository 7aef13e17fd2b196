"""Wallet use-cases against real Postgres, with in-memory fakes of inference and keyvault."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Actor, GenerateEvent, KeyRestriction, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.wallet import KeyTest, Wallet
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

from .conftest import ALICE, FakeInference, FakeKeyVault, command

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
# Deliberately not shaped like any vendor key, so only its absence (not the redactor) passes.
PLANTED = "plantedKEYzq7Wm3Xv9Rt2Lp8Ny4"


async def collect(stream: AsyncIterator[GenerateEvent]) -> list[GenerateEvent]:
    return [event async for event in stream]


# ---- wallet ----


async def test_wallet_set_list_remove(
    wallet: Wallet, store: GatewayStore, inference: FakeInference, keyvault: FakeKeyVault
) -> None:
    stored = await wallet.set(ALICE, "openrouter", SecretStr(PLANTED), skip_validation=False)
    assert (stored.key.provider, stored.key.hint) == ("openrouter", PLANTED[-4:])
    assert stored.restriction is None
    assert inference.validated == [("openrouter", PLANTED)]
    alice = await store.upsert_user(ALICE)
    assert keyvault.keys[alice.id, "openrouter"].get_secret_value() == PLANTED

    assert [k.provider for k in await wallet.list(ALICE)] == ["openrouter"]
    assert await wallet.list(BOB) == []

    await wallet.remove(ALICE, "openrouter")
    assert keyvault.keys == {}
    with pytest.raises(NotFound) as caught:
        await wallet.remove(ALICE, "openrouter")
    assert caught.value.reason == "NO_API_KEY"


@pytest.mark.parametrize(
    ("refusal", "code", "message"),
    [
        (
            FailedPrecondition("openrouter rejected the API key", reason="INVALID_API_KEY"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "the key was rejected by openrouter",
        ),
        (
            ResourceExhausted("no credits (HTTP 402)", reason="PROVIDER_QUOTA_EXCEEDED"),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "openrouter accepted the key but it has no credits or quota left",
        ),
        (
            Unavailable("openrouter is unreachable", reason="PROVIDER_UNAVAILABLE"),
            grpc.StatusCode.UNAVAILABLE,
            "openrouter is unreachable",
        ),
    ],
)
async def test_a_refused_key_is_not_stored(
    wallet: Wallet,
    *,
    inference: FakeInference,
    keyvault: FakeKeyVault,
    refusal: TzurotError,
    code: grpc.StatusCode,
    message: str,
) -> None:
    inference.key_error = refusal
    with pytest.raises(TzurotError) as caught:
        await wallet.set(ALICE, "openrouter", SecretStr(PLANTED), skip_validation=False)
    assert (caught.value.code, caught.value.message) == (code, message)
    assert caught.value.reason == refusal.reason
    assert inference.validated == [("openrouter", PLANTED)]
    assert keyvault.keys == {}


async def test_setting_again_replaces_the_key(wallet: Wallet, keyvault: FakeKeyVault) -> None:
    await wallet.set(ALICE, "openrouter", SecretStr(PLANTED), skip_validation=False)
    await wallet.set(ALICE, "openrouter", SecretStr(PLANTED + "2"), skip_validation=False)
    assert [k.get_secret_value() for k in keyvault.keys.values()] == [PLANTED + "2"]
    assert [k.hint for k in await wallet.list(ALICE)] == [(PLANTED + "2")[-4:]]


@pytest.mark.parametrize(
    ("refusal", "valid", "detail"),
    [
        (None, True, "the key works (3 models visible)"),
        (
            FailedPrecondition("rejected", reason="INVALID_API_KEY"),
            False,
            "the key was rejected by openrouter",
        ),
        (
            ResourceExhausted("no credits", reason="PROVIDER_QUOTA_EXCEEDED"),
            False,
            "no credits or quota left on this key at openrouter",
        ),
        (
            ResourceExhausted("slow down", reason="PROVIDER_RATE_LIMITED"),
            True,
            "the key works, but openrouter is rate limiting it now",
        ),
    ],
)
async def test_testing_a_stored_key_reports_refusals_and_quota(
    wallet: Wallet,
    *,
    store: GatewayStore,
    inference: FakeInference,
    refusal: TzurotError | None,
    valid: bool,
    detail: str,
) -> None:
    await wallet.set(ALICE, "openrouter", SecretStr(PLANTED), skip_validation=False)
    inference.key_error = refusal
    result = await wallet.test(ALICE, "openrouter")
    assert (result.valid, result.detail) == (valid, detail)
    alice = await store.upsert_user(ALICE)
    assert inference.checked == [(alice.id, "openrouter")]  # the user id, never the key


async def test_a_key_the_provider_restricts_is_stored_and_its_limits_returned(
    wallet: Wallet, store: GatewayStore, inference: FakeInference, keyvault: FakeKeyVault
) -> None:
    """The provider authenticated the key but refused the check's call for a permission the
    key is restricted without (ElevenLabs' text-to-speech-only key lacks `voices_read`): a
    working key, stored, and `set` and `test` say what it lacks."""
    inference.key_restriction = KeyRestriction(("voices_read",))
    stored = await wallet.set(ALICE, "elevenlabs", SecretStr(PLANTED), skip_validation=False)
    assert stored.restriction == KeyRestriction(("voices_read",))
    alice = await store.upsert_user(ALICE)
    assert keyvault.keys[alice.id, "elevenlabs"].get_secret_value() == PLANTED
    assert [k.active for k in await wallet.list(ALICE)] == [True]
    tested = await wallet.test(ALICE, "elevenlabs")
    assert tested == KeyTest(
        True,
        "the key works, but elevenlabs restricts it: it lacks voices_read",
        KeyRestriction(("voices_read",)),
    )


async def test_testing_needs_a_stored_key_and_a_reachable_provider(
    wallet: Wallet, inference: FakeInference
) -> None:
    with pytest.raises(NotFound) as missing:
        await wallet.test(ALICE, "openrouter")
    assert missing.value.reason == "NO_API_KEY"
    assert inference.checked == []
    await wallet.set(ALICE, "openrouter", SecretStr(PLANTED), skip_validation=False)
    inference.key_error = Unavailable("openrouter is unreachable", reason="PROVIDER_UNAVAILABLE")
    with pytest.raises(Unavailable):
        await wallet.test(ALICE, "openrouter")


async def test_skipping_validation_is_for_superusers(
    wallet: Wallet,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    keyvault: FakeKeyVault,
) -> None:
    with pytest.raises(PermissionDenied):
        await wallet.set(ALICE, "ollama", SecretStr(PLANTED), skip_validation=True)
    assert keyvault.keys == {}
    alice = await store.upsert_user(ALICE)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(t.users).where(t.users.c.id == alice.id).values(superuser=True)
        )
    await wallet.set(ALICE, "ollama", SecretStr(PLANTED), skip_validation=True)
    assert inference.validated == []
    assert list(keyvault.keys) == [(alice.id, "ollama")]


@pytest.mark.parametrize(
    "case",
    [
        ("", PLANTED, "provider"),
        ("p" * 201, PLANTED, "provider"),
        ("openrouter", "", "api_key"),
        ("openrouter", "   ", "api_key"),
        ("openrouter", PLANTED * 200, "api_key"),
        ("openrouter", PLANTED + "🌙", "api_key"),  # a header holds ASCII only
    ],
)
async def test_invalid_wallet_requests_name_the_field(
    wallet: Wallet,
    inference: FakeInference,
    keyvault: FakeKeyVault,
    case: tuple[str, str, str],
) -> None:
    provider, api_key, field = case
    with pytest.raises(InvalidArgument) as caught:
        await wallet.set(ALICE, provider, SecretStr(api_key), skip_validation=False)
    assert caught.value.field == field
    assert PLANTED not in caught.value.message
    assert inference.validated == []
    assert keyvault.keys == {}


@pytest.mark.usefixtures("debug_logs")
async def test_the_key_never_reaches_logs_or_errors(
    wallet: Wallet,
    gateway: Gateway,
    inference: FakeInference,
    lilith: Personality,
    capfd: pytest.CaptureFixture[str],
) -> None:
    errors: list[TzurotError] = []
    await wallet.set(ALICE, "openrouter", SecretStr(PLANTED), skip_validation=False)
    await wallet.list(ALICE)
    for provider, key, skip in (
        ("openrouter", PLANTED * 200, False),
        ("", PLANTED, False),
        ("openrouter", PLANTED, True),
    ):
        with pytest.raises(TzurotError) as caught:
            await wallet.set(ALICE, provider, SecretStr(key), skip_validation=skip)
        errors.append(caught.value)
    inference.key_error = FailedPrecondition(
        "the key was rejected by openrouter", reason="INVALID_API_KEY"
    )
    with pytest.raises(TzurotError) as rejected:
        await wallet.set(ALICE, "openrouter", SecretStr(PLANTED), skip_validation=False)
    errors.append(rejected.value)
    await collect(gateway.generate(command()))
    await wallet.remove(ALICE, "openrouter")

    out, err = capfd.readouterr()
    logs = out + err
    assert "job.streamed" in logs  # the pipeline did capture gateway's events
    for text in (logs, *(f"{e!r} {e} {e.metadata}" for e in errors)):
        assert PLANTED not in text
        assert PLANTED[:12] not in text
        assert PLANTED[-12:] not in text
