"""The wallet refuses a provider it does not know, and a key with whitespace or control
characters, before any call that would carry them, and never quotes either.

A common mistake is pasting the key into the `provider` option (`/wallet set <key>`,
`/wallet remove <key>`): the key must then reach no other service, no message and no log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from tzurot.gateway.domain import WalletKey
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.wallet import KNOWN_PROVIDERS, UNKNOWN_PROVIDER, Wallet
from tzurot.inference.providers import DEFAULT_PROVIDERS
from tzurot.runtime.errors import InvalidArgument, NotFound, TzurotError

from .conftest import ALICE, FakeInference, FakeKeyVault

pytestmark = pytest.mark.component

# Key-shaped values typed where the provider goes: an ElevenLabs key (lowercase, fits
# keyvault's provider pattern) and an OpenRouter key.
EL_KEY = "sk_" + "0123456789abcdef" * 3
OR_KEY = "sk-or-v1-" + "ab12" * 16
PLANTED = "plantedKEYzq7Wm3Xv9Rt2Lp8Ny4"


@dataclass
class CountingKeyVault(FakeKeyVault):
    """FakeKeyVault recording which providers each call named."""

    named: list[tuple[str, str]] = field(default_factory=list)

    async def put_key(self, user_id: str, provider: str, api_key: SecretStr) -> WalletKey:
        self.named.append(("put_key", provider))
        return await super().put_key(user_id, provider, api_key)

    async def delete_key(self, user_id: str, provider: str) -> bool:
        self.named.append(("delete_key", provider))
        return await super().delete_key(user_id, provider)


@pytest.fixture
def vault() -> CountingKeyVault:
    return CountingKeyVault()


@pytest.fixture
def guarded(gateway: Gateway, vault: CountingKeyVault, inference: FakeInference) -> Wallet:
    return Wallet(users=gateway, checker=inference, keyvault=vault)


def assert_unknown(err: TzurotError, typed: str) -> None:
    assert isinstance(err, InvalidArgument)
    assert err.reason == UNKNOWN_PROVIDER
    assert err.field == "provider"
    assert err.message == "unknown provider; known: " + ", ".join(sorted(KNOWN_PROVIDERS))
    for text in (err.message, repr(err), str(err), str(err.metadata)):
        assert typed not in text
        assert typed[:12] not in text


def test_the_known_providers_are_inferences_built_in_ones_and_the_wallets_services() -> None:
    assert set(DEFAULT_PROVIDERS) | {"elevenlabs", "brave"} <= KNOWN_PROVIDERS


@pytest.mark.parametrize("typed", [EL_KEY, OR_KEY, "groq"])
async def test_set_refuses_an_unknown_provider_before_asking_anyone(
    guarded: Wallet, inference: FakeInference, vault: CountingKeyVault, typed: str
) -> None:
    with pytest.raises(TzurotError) as caught:
        await guarded.set(ALICE, typed, SecretStr(PLANTED), skip_validation=False)
    assert_unknown(caught.value, typed)
    assert inference.validated == []
    assert vault.named == []


@pytest.mark.parametrize("typed", [EL_KEY, OR_KEY])
async def test_remove_and_test_refuse_an_unknown_provider_without_naming_it_downstream(
    guarded: Wallet, inference: FakeInference, vault: CountingKeyVault, typed: str
) -> None:
    await guarded.set(ALICE, "openrouter", SecretStr(PLANTED), skip_validation=False)
    vault.named.clear()
    with pytest.raises(TzurotError) as removed:
        await guarded.remove(ALICE, typed)
    assert_unknown(removed.value, typed)
    with pytest.raises(TzurotError) as tested:
        await guarded.test(ALICE, typed)
    assert_unknown(tested.value, typed)
    assert vault.named == []  # keyvault was never asked about it (so never audited it)
    assert inference.checked == []
    assert [k.provider for k in await guarded.list(ALICE)] == ["openrouter"]


async def test_a_known_provider_without_a_key_is_not_found_by_its_name(guarded: Wallet) -> None:
    with pytest.raises(NotFound) as removed:
        await guarded.remove(ALICE, "openai")
    assert removed.value.message == "no openai key stored for you"
    with pytest.raises(NotFound) as tested:
        await guarded.test(ALICE, "openai")
    assert tested.value.reason == "NO_API_KEY"


async def test_a_stored_key_of_a_provider_outside_the_list_can_still_be_tested_and_removed(
    guarded: Wallet, store: GatewayStore, vault: CountingKeyVault, inference: FakeInference
) -> None:
    """A provider the operator added to inference (`TZUROT_PROVIDERS`), stored earlier: the
    user's own keys are known too, for `test` and `remove`."""
    alice = await store.upsert_user(ALICE)
    vault.keys[alice.id, "groq"] = SecretStr(PLANTED)
    assert (await guarded.test(ALICE, "groq")).valid
    assert inference.checked == [(alice.id, "groq")]
    await guarded.remove(ALICE, "groq")
    assert vault.keys == {}


async def test_the_list_of_known_providers_can_be_given(
    gateway: Gateway, inference: FakeInference, vault: CountingKeyVault
) -> None:
    extended = Wallet(
        users=gateway,
        checker=inference,
        keyvault=vault,
        providers=KNOWN_PROVIDERS | {"groq"},
    )
    await extended.set(ALICE, "groq", SecretStr(PLANTED), skip_validation=False)
    assert inference.validated == [("groq", PLANTED)]


@pytest.mark.parametrize(
    "key",
    [
        "LEAKME0123456789\nabcdef0123456789",
        "LEAKME0123456789\r\nabcdef0123456789",
        "LEAKME0123456789 abcdef0123456789",
        "LEAKME0123456789\tabcdef0123456789",
        "LEAKME0123456789\x00abcdef0123456789",
        "LEAKME0123456789\x7fabcdef0123456789",
        " LEAKME0123456789abcdef0123456789",
    ],
)
async def test_a_key_with_whitespace_or_control_characters_is_refused_before_any_call(
    guarded: Wallet, inference: FakeInference, vault: CountingKeyVault, key: str
) -> None:
    """Same rule as keyvault's: such a key cannot be stored anyway, and inference's HTTP
    client would log the whole header value it refuses to send (httpcore at DEBUG)."""
    with pytest.raises(InvalidArgument) as caught:
        await guarded.set(ALICE, "elevenlabs", SecretStr(key), skip_validation=False)
    assert caught.value.field == "api_key"
    assert "LEAKME" not in f"{caught.value!r} {caught.value} {caught.value.metadata}"
    assert inference.validated == []
    assert vault.named == []


async def test_a_printable_key_is_still_checked_and_stored(
    guarded: Wallet, inference: FakeInference, vault: CountingKeyVault
) -> None:
    await guarded.set(ALICE, "brave", SecretStr("BSA" + PLANTED), skip_validation=False)
    assert inference.validated == [("brave", "BSA" + PLANTED)]
    assert vault.named == [("put_key", "brave")]
