"""The wallet refuses a provider it does not know, and a key with whitespace or control
characters, before any call that would carry them, and never quotes either.

A common mistake is pasting the key into the `provider` option (`/wallet set <key>`,
`/wallet remove <key>`): the key must then reach no other service, no message and no log.
The providers it knows are inference's (ListProviders, cached a minute), the operator's own
among them; without an answer from inference, the built-in ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
import pytest
from pydantic import SecretStr

from tzurot.gateway.domain import KeyCheck, WalletKey
from tzurot.gateway.provider_list import (
    KNOWN_PROVIDERS,
    PROVIDERS_RETRY_SECONDS,
    PROVIDERS_TTL_SECONDS,
    InferenceProviders,
    ProviderList,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.wallet import NO_PROVIDER_LIST, UNKNOWN_PROVIDER, Wallet
from tzurot.inference.providers import DEFAULT_PROVIDERS
from tzurot.runtime.errors import InvalidArgument, NotFound, TzurotError, Unavailable

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


# ---- the providers as inference lists them ----

OPERATORS = KNOWN_PROVIDERS | {"groq"}
"""Inference's list when its operator added `groq` with TZUROT_PROVIDERS."""


@dataclass
class Lister:
    """Inference's ListProviders: `names`, or UNAVAILABLE while `names` is None (down,
    restarting); with `gate`, each question waits on it."""

    names: frozenset[str] | None = OPERATORS
    asked: int = 0
    gate: asyncio.Event | None = None
    failure: TzurotError = field(default_factory=lambda: Unavailable("inference is restarting"))

    async def list_providers(self) -> ProviderList:
        self.asked += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.names is None:
            raise self.failure
        return ProviderList(self.names)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def asking(
    gateway: Gateway, inference: FakeInference, vault: CountingKeyVault, lister: Lister
) -> Wallet:
    return Wallet(
        users=gateway, checker=inference, keyvault=vault, providers=InferenceProviders(lister)
    )


async def test_a_provider_the_operator_added_to_inference_can_be_set_tested_and_removed(
    gateway: Gateway, inference: FakeInference, vault: CountingKeyVault, store: GatewayStore
) -> None:
    wallet = asking(gateway, inference, vault, Lister())
    await wallet.set(ALICE, "groq", SecretStr(PLANTED), skip_validation=False)
    assert inference.validated == [("groq", PLANTED)]
    assert (await wallet.test(ALICE, "groq")).valid
    await wallet.remove(ALICE, "groq")
    assert vault.named == [("put_key", "groq"), ("delete_key", "groq")]
    with pytest.raises(NotFound):  # known, not held: not found by its name
        await wallet.test(ALICE, "groq")


@pytest.mark.parametrize("typed", [EL_KEY, "mistral"])
async def test_what_inference_does_not_list_is_refused_with_its_list_unquoted(
    gateway: Gateway, inference: FakeInference, vault: CountingKeyVault, typed: str
) -> None:
    wallet = asking(gateway, inference, vault, Lister())
    for call in (
        wallet.set(ALICE, typed, SecretStr(PLANTED), skip_validation=False),
        wallet.remove(ALICE, typed),
        wallet.test(ALICE, typed),
    ):
        with pytest.raises(InvalidArgument) as caught:
            await call
        assert caught.value.reason == UNKNOWN_PROVIDER
        assert caught.value.message == "unknown provider; known: " + ", ".join(sorted(OPERATORS))
        assert typed not in f"{caught.value!r} {caught.value} {caught.value.metadata}"
    assert (inference.validated, inference.checked, vault.named) == ([], [], [])


async def test_inference_is_asked_once_a_minute() -> None:
    lister, clock = Lister(), Clock()
    providers = InferenceProviders(lister, clock=clock)
    assert await providers.names() == OPERATORS
    clock.now += PROVIDERS_TTL_SECONDS - 1
    assert await providers.names() == OPERATORS
    assert lister.asked == 1
    lister.names = KNOWN_PROVIDERS | {"groq", "mistral"}  # the operator added another
    clock.now += 1
    assert "mistral" in await providers.names()
    assert lister.asked == 2


async def test_questions_at_once_share_one_answer() -> None:
    gate = asyncio.Event()
    lister = Lister(gate=gate)
    providers = InferenceProviders(lister)
    waiting = [asyncio.create_task(providers.names()) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [OPERATORS] * 5
    assert lister.asked == 1


@pytest.mark.parametrize(
    "failure",
    [
        Unavailable("inference is restarting"),
        TzurotError("not yet", reason="NOT_IMPLEMENTED", code=grpc.StatusCode.UNIMPLEMENTED),
    ],
    ids=["down", "older-inference"],
)
async def test_without_an_answer_from_inference_the_built_in_providers_stand_in(
    gateway: Gateway,
    inference: FakeInference,
    vault: CountingKeyVault,
    store: GatewayStore,
    failure: TzurotError,
) -> None:
    """Set, test and remove of a built-in provider keep working; an operator's own is
    UNAVAILABLE, to try again, until inference answers, not called unknown (review 277), but a
    key the user holds for it stays testable and removable."""
    lister, clock = Lister(names=None, failure=failure), Clock()
    wallet = Wallet(
        users=gateway,
        checker=inference,
        keyvault=vault,
        providers=InferenceProviders(lister, clock=clock),
    )
    await wallet.set(ALICE, "openrouter", SecretStr(PLANTED), skip_validation=False)
    assert (await wallet.test(ALICE, "openrouter")).valid
    with pytest.raises(Unavailable) as caught:
        await wallet.set(ALICE, "groq", SecretStr(PLANTED), skip_validation=False)
    assert caught.value.message == NO_PROVIDER_LIST
    alice = await store.upsert_user(ALICE)
    vault.keys[alice.id, "groq"] = SecretStr(PLANTED)  # stored while inference listed it
    assert (await wallet.test(ALICE, "groq")).valid
    await wallet.remove(ALICE, "groq")
    await wallet.remove(ALICE, "openrouter")
    assert vault.keys == {}

    assert lister.asked == 1  # its failure is kept a few seconds: not asked per call
    lister.names = OPERATORS  # inference is back: the stand-in list was not kept
    clock.now += PROVIDERS_RETRY_SECONDS
    await wallet.set(ALICE, "groq", SecretStr(PLANTED), skip_validation=False)
    assert lister.asked == 2


@dataclass
class BraveInference(FakeInference):
    """Inference's answers for Brave Search, which has no free check: a new key is only
    checked for its form, a stored one with one billed search."""

    async def validate_key(self, provider: str, api_key: SecretStr) -> KeyCheck:
        await super().validate_key(provider, api_key)
        return KeyCheck(unchecked=True)

    async def check_stored_key(self, user_id: str, provider: str) -> KeyCheck:
        await super().check_stored_key(user_id, provider)
        return KeyCheck(billed_requests=1)


async def test_a_brave_key_is_stored_unchecked_and_its_test_says_it_spent_a_search(
    gateway: Gateway, vault: CountingKeyVault
) -> None:
    brave = BraveInference()
    wallet = Wallet(users=gateway, checker=brave, keyvault=vault)
    stored = await wallet.set(ALICE, "brave", SecretStr("BSA" + PLANTED), skip_validation=False)
    assert stored.key.provider == "brave"
    tested = await wallet.test(ALICE, "brave")
    assert (tested.valid, tested.detail) == (
        True,
        "the key works (brave has no free check: this test spent one billed request on it)",
    )
